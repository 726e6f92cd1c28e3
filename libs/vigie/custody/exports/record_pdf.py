"""The printable extraction record (« procès-verbal d'extraction ») an officer files: who extracted
what, when, why, for which procedure and recipient, and the SHA-256 of every video handed over.
In French, on A4, with the DejaVu font (accents, dashes, guillemets); where that font is absent
the PDF's own Helvetica is used and characters outside Latin-1 are replaced, and said so."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

from vigie.custody.exports.texts import keep_until
from vigie.plumbing.log import get_logger
from vigie.records import legal_time
from vigie.records.legal_time import DEFAULT_TIME_ZONE

log = get_logger(__name__)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian's fonts-dejavu-core
FONT_BOLD = FONT.with_name("DejaVuSans-Bold.ttf")
FILE_NAME = "proces-verbal-extraction.pdf"


def _local(iso: str, time_zone: str) -> str:
    """An instant of the manifest (UTC) in the commune's legal time."""
    moment = legal_time.local(datetime.fromisoformat(iso.replace("Z", "+00:00")), time_zone)
    return f"{moment:%d/%m/%Y à %H:%M:%S}"


class _Record(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.unicode = FONT.exists() and FONT_BOLD.exists()
        if self.unicode:
            self.add_font("DejaVu", "", str(FONT))
            self.add_font("DejaVu", "B", str(FONT_BOLD))
            self.family_name = "DejaVu"
        else:
            log.warning("export_record_font_missing", font=str(FONT),
                        consequence="Helvetica: characters outside Latin-1 replaced")
            self.family_name = "Helvetica"
        self.set_auto_page_break(True, margin=15)
        self.set_margins(18, 15, 18)

    def text(self, value: str) -> str:  # type: ignore[override]
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")

    def line_of(self, label: str, value: str) -> None:
        self.set_font(self.family_name, "B", 10)
        self.cell(55, 6, self.text(label))
        self.set_font(self.family_name, "", 10)
        self.multi_cell(0, 6, self.text(value), align="L", new_x="LMARGIN", new_y="NEXT")

    def heading(self, value: str) -> None:
        self.ln(3)
        self.set_font(self.family_name, "B", 12)
        self.cell(0, 8, self.text(value), new_x="LMARGIN", new_y="NEXT")


def write_record(folder: Path, manifest: dict[str, Any], videos: dict[str, str]) -> Path:
    """`videos`: each video file of the package with its SHA-256."""
    pdf = _Record()
    pdf.add_page()
    req = manifest["requisition"]
    pdf.set_font(pdf.family_name, "B", 15)
    pdf.multi_cell(0, 8, pdf.text("Procès-verbal d'extraction d'images de vidéoprotection"),
                   align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.line_of("Extraction", manifest["export_id"])
    # The record's own time in the first camera's commune's (a requisition is one commune's).
    zones = [c.get("time_zone", DEFAULT_TIME_ZONE) for c in manifest["cameras"]]
    made_in = zones[0] if zones else DEFAULT_TIME_ZONE
    pdf.line_of("Faite le", f"{_local(manifest['created_at'], made_in)} "
                f"({legal_time.label(made_in)})")
    pdf.line_of("Par (agent)", manifest["created_by"])
    pdf.line_of("Réquisition", req["reference"])
    pdf.line_of("Requérant (OPJ)", req["officer"])
    pdf.line_of("Motif", req["reason"])
    pdf.line_of("Destinataire", manifest["recipient"])
    pdf.line_of("Support / transfert", manifest["medium"])
    for camera in manifest["cameras"]:
        zone = camera.get("time_zone", DEFAULT_TIME_ZONE)
        pdf.heading(f"Caméra {camera['name']} ({camera['camera']})")
        pdf.line_of("Heures", legal_time.label(zone))
        if camera["location"]:
            pdf.line_of("Emplacement", camera["location"])
        period = camera["period"]
        pdf.line_of("Période demandée",
                    f"du {_local(period['start'], zone)} au {_local(period['end'], zone)}")
        if camera["mask_versions"]:
            pdf.line_of("Masques (versions)", ", ".join(map(str, camera["mask_versions"])))
        for part in camera["parts"]:
            pdf.line_of("Vidéo", f"{part['video']} — du {_local(part['start'], zone)} au "
                        f"{_local(part['end'], zone)}")
            pdf.line_of("SHA-256", videos[part["video"]])
        for gap in camera["gaps"]:
            why = ("effacé avant la réquisition" if gap["why"] == "erased"
                   else "non enregistré")
            pdf.line_of("Sans images", f"du {_local(gap['start'], zone)} au "
                        f"{_local(gap['end'], zone)} "
                        f"({why})")
    pdf.heading("Intégrité")
    pdf.set_font(pdf.family_name, "", 10)
    pdf.multi_cell(0, 5, pdf.text(
        "Chaque fichier du paquet figure avec son empreinte SHA-256 dans SHA256SUMS et dans "
        "manifest.json, signé (manifest.sig, Ed25519) par la clé d'extraction du service, "
        f"d'empreinte {manifest['signing_key']['fingerprint']}. Vérification : voir "
        "LISEZMOI.txt (sha256sum -c SHA256SUMS ; openssl pkeyutl -verify …)."),
        align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.heading("Durée de conservation")
    pdf.set_font(pdf.family_name, "", 10)
    pdf.multi_cell(0, 5, pdf.text(keep_until(manifest)), align="L", new_x="LMARGIN",
                   new_y="NEXT")
    pdf.ln(10)
    pdf.set_font(pdf.family_name, "", 10)
    pdf.cell(85, 6, pdf.text("Signature de l'agent"))
    pdf.cell(0, 6, pdf.text("Signature du destinataire"), new_x="LMARGIN", new_y="NEXT")
    path = folder / FILE_NAME
    pdf.output(str(path))
    return path
