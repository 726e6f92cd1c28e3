"""The two files of a package a person reads first: LISEZMOI.txt (how to play and how to verify with
standard tools alone) and player.html (plays the videos with their time track, offline, in any
current browser, nothing to install)."""

from __future__ import annotations

import html
import json
from datetime import date, datetime, timedelta
from typing import Any

from vigie.records import legal_time
from vigie.records.legal_time import DEFAULT_TIME_ZONE


def _zone(manifest: dict[str, Any]) -> str:
    """The legal time of the package's commune (each camera carries it; one commune a package)."""
    zones = {c.get("time_zone") for c in manifest.get("cameras", [])} - {None}
    return zones.pop() if len(zones) == 1 else legal_time.DEFAULT_TIME_ZONE


def time_cues(start: datetime, end: datetime, *, camera: str, name: str, location: str,
              time_zone: str = DEFAULT_TIME_ZONE) -> list[tuple[int, str]]:
    """(second from the video's start, text) each second: the capture date and time in the
    commune's legal time (R36), the camera's name, id and place — the .vtt files and
    player.html's track alike."""
    total = max(1, int((end - start).total_seconds() + 0.999))
    place = f" — {location}" if location else ""
    zone = legal_time.label(time_zone)
    return [(second, legal_time.local(start + timedelta(seconds=second), time_zone)
             .strftime("%d/%m/%Y %H:%M:%S") + f" ({zone}) — {name} ({camera}){place}")
            for second in range(total)]


def one_month_after(created_at: str, time_zone: str = legal_time.DEFAULT_TIME_ZONE) -> str:
    """R6: the date a recipient's copy is to be destroyed by (a calendar month after its
    transmission, the package's making; the last day of a shorter month), dd/mm/yyyy in the
    commune's legal time."""
    made = legal_time.local(datetime.fromisoformat(created_at), time_zone).date()
    year, month = (made.year + 1, 1) if made.month == 12 else (made.year, made.month + 1)
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return f"{date(year, month, min(made.day, last)):%d/%m/%Y}"


def keep_until(manifest: dict[str, Any]) -> str:
    """What the recipient is told of how long it may keep the copy (R6, CSI L252-3)."""
    destroy_by = one_month_after(manifest["created_at"], _zone(manifest))
    return (f"Cette copie est remise pour la réquisition ci-dessus. Elle doit être détruite un mois "
            f"après sa transmission, au plus tard le {destroy_by}, "
            "sauf si elle est versée à une procédure judiciaire (article L252-3 du code de la "
            "sécurité intérieure).")


def lisez_moi(manifest: dict[str, Any]) -> str:
    req = manifest["requisition"]
    cameras = "\n".join(
        f"  - {c['name']} ({c['camera']}){' — ' + c['location'] if c['location'] else ''} : "
        f"du {c['period']['start']} au {c['period']['end']} (UTC), "
        f"{len(c['parts'])} fichier(s) vidéo"
        + (f", {len(c['gaps'])} période(s) manquante(s) (voir manifest.json, « gaps »)"
           if c["gaps"] else "")
        for c in manifest["cameras"])
    onvif_commands = "\n".join(_onvif_commands(p) for c in manifest["cameras"]
                               for p in c["parts"] if p.get("onvif_signature"))
    return f"""EXTRACTION D'IMAGES DE VIDÉOPROTECTION — {manifest['export_id']}

Réquisition : {req['reference']} — {req['officer']}
Destinataire : {manifest['recipient']} ({manifest['medium']})
Extraction faite par : {manifest['created_by']}, le {manifest['created_at']} (UTC)
Motif : {req['reason']}

Caméras et périodes :
{cameras}

DURÉE DE CONSERVATION
{keep_until(manifest)}

1. REGARDER LES IMAGES
Le procès-verbal d'extraction à imprimer est proces-verbal-extraction.pdf.

Ouvrir player.html dans un navigateur récent (Firefox, Chrome, Edge, Safari), sans connexion
réseau ni installation : chaque vidéo est jouée avec, en sous-titre, la date et l'heure de prise
de vue (heure légale de la commune), le nom et l'emplacement de la caméra. Les vidéos (dossier videos/) sont
des fichiers MP4 (H.264) lisibles aussi par VLC ; les fichiers .vtt sont leurs sous-titres.
Les zones privées (fenêtres, jardins, entrées d'immeubles) sont masquées dans l'image même,
telles qu'elles ont été enregistrées : l'extraction ne réencode pas la vidéo.

2. VÉRIFIER L'INTÉGRITÉ (outils standard, sans logiciel Vigie)
Dans ce dossier, sous Linux ou macOS (ou Windows avec Git Bash / WSL) :

  openssl pkeyutl -verify -pubin -inkey cle-publique.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
      doit répondre « Signature Verified Successfully » : la liste des empreintes a été signée
      par la clé d'extraction du service ;

  sha256sum -c SHA256SUMS
      chaque fichier doit être « OK » (un seul octet modifié fait échouer la vérification) ;

  find . -type f | sort
      ne doit montrer que les fichiers que nomme SHA256SUMS, plus SHA256SUMS, SHA256SUMS.sig,
      manifest.json, manifest.sig et cle-publique.pem : un fichier ajouté n'est pas une pièce
      extraite par le service, même si sa ligne a été ajoutée à SHA256SUMS (la signature ne
      tiendrait plus) ;

  openssl pkeyutl -verify -pubin -inkey cle-publique.pem -rawin -in manifest.json -sigfile manifest.sig
      doit répondre « Signature Verified Successfully » : manifest.json (qui liste chaque fichier
      avec sa taille et son empreinte SHA-256) a été signé par la même clé ;

  openssl pkey -pubin -in cle-publique.pem -outform DER | openssl dgst -sha256 -binary | openssl base64
      donne l'empreinte de la clé ({manifest['signing_key']['fingerprint']}) : la comparer avec
      celle que publie le service de vidéoprotection (elle figure aussi à son registre des accès).
      Sans cette comparaison, rien ne relie le paquet au service : n'importe qui peut signer un
      paquet avec sa propre clé et la joindre.

3. FORMAT D'EXPORT ONVIF
Chaque vidéo est aussi un fichier au format « ONVIF Export File Format » (MP4 fragmenté), que
lisent et vérifient les outils compatibles ONVIF (par exemple ONVIF Export File Player) : caméra et
unité d'export (boîte suep), heure de début corrigée (cstb), lieu (loci), signature RSASSA-PSS du
fichier entier (sibo) et son certificat (cert), émis par la clé d'extraction ci-dessus.
Vérification avec openssl seul, pour chaque fichier :
{onvif_commands}
      doit répondre « Verified OK » ;
  openssl x509 -inform DER -in cert.der -noout -issuer
      l'émetteur porte l'empreinte de la clé d'extraction (serialNumber).

4. PROVENANCE DEPUIS L'ENREGISTREMENT
L'enregistreur a signé chaque segment de 60 s au moment où il l'a stocké (clé d'enregistrement,
distincte de la clé d'extraction) : heure de début et de fin, empreinte du fichier et des images,
nombre d'images, et le lien du segment précédent (une chaîne). manifest.json les reproduit
(« provenance » de chaque segment ; clés publiques dans « recording_keys »). La commande
`vigie export verify` vérifie ces signatures, la continuité de la chaîne et que les images des
vidéos sont exactement celles que l'enregistreur a signées : les images, l'heure et l'absence de
coupure sont celles de l'enregistrement, pas seulement celles de l'extraction.

Une copie de ce dossier peut être vérifiée de la même façon par toute personne qui la reçoit.
"""


def _onvif_commands(part: dict[str, Any]) -> str:
    at = part["onvif_signature"]
    return (f"  f={part['onvif']}\n"
            f"  dd if=$f of=signature.bin bs=1 skip={at['signature_offset']} "
            f"count={at['signature_length']} status=none\n"
            f"  dd if=$f of=cert.der bs=1 skip={at['certificate_offset']} "
            f"count={at['certificate_length']} status=none\n"
            f"  cp $f zero.mp4 && dd if=/dev/zero of=zero.mp4 bs=1 seek={at['signature_offset']} "
            f"count={at['signature_length']} conv=notrunc status=none\n"
            "  openssl x509 -inform DER -in cert.der -pubkey -noout > cert.pem\n"
            "  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:20 "
            "-verify cert.pem -signature signature.bin zero.mp4")


PLAYER = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Extraction {export_id}</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 1.5rem; background: #111; color: #eee; }}
  h1 {{ font-size: 1.3rem; }}
  section {{ margin: 1.5rem 0; }}
  video {{ width: 100%; max-width: 1280px; background: #000; display: block; }}
  .meta {{ color: #bbb; font-size: 0.9rem; }}
  .gap {{ color: #f5a623; }}
</style>
</head>
<body>
<h1>Extraction {export_id} — réquisition {reference}</h1>
<p class="meta">Destinataire : {recipient}. Extraction du {created_at} (UTC) par {created_by}.
Heures de prise de vue en sous-titre (heure légale de la commune). Vérification : voir LISEZMOI.txt.</p>
{sections}
<script>
// Each video's time track, from the cues written in the page beside it (no file to fetch).
for (const data of document.querySelectorAll("script.heures")) {{
  const video = data.previousElementSibling;
  const track = video.addTextTrack("subtitles", "Heure de prise de vue", "fr");
  for (const [second, text] of JSON.parse(data.textContent)) {{
    track.addCue(new VTTCue(second, second + 1, text));
  }}
  track.mode = "showing";
}}
</script>
</body>
</html>
"""


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def player_html(manifest: dict[str, Any]) -> str:
    sections = []
    for camera in manifest["cameras"]:
        parts = []
        for part in camera["parts"]:
            # The time track is built in the page: a browser opening the file from a disk
            # (file://) refuses to load a <track> file beside it (Chromium does).
            cues = time_cues(_instant(part["start"]), _instant(part["end"]),
                             camera=camera["camera"], name=camera["name"],
                             location=camera["location"],
                             time_zone=camera.get("time_zone", DEFAULT_TIME_ZONE))
            data = json.dumps(cues, ensure_ascii=False).replace("</", "<\\/")
            parts.append(
                f'<figure><video controls preload="metadata" src="{html.escape(part["video"])}" '
                f'data-start="{html.escape(part["start"])}"></video>'
                f'<script type="application/json" class="heures">{data}</script>'
                f'<figcaption class="meta">du {html.escape(part["start"])} au '
                f'{html.escape(part["end"])} (UTC)</figcaption></figure>')
        gaps = "".join(
            f'<li class="gap">{html.escape(g["start"])} – {html.escape(g["end"])} : '
            f'{"effacé avant la réquisition" if g["why"] == "erased" else "non enregistré"}</li>'
            for g in camera["gaps"])
        sections.append(
            f'<section><h2>{html.escape(camera["name"])} ({html.escape(camera["camera"])})</h2>'
            f'<p class="meta">{html.escape(camera["location"])}</p>{"".join(parts)}'
            + (f"<p>Périodes demandées sans images :</p><ul>{gaps}</ul>" if gaps else "")
            + "</section>")
    req = manifest["requisition"]
    return PLAYER.format(
        export_id=html.escape(manifest["export_id"]), reference=html.escape(req["reference"]),
        recipient=html.escape(manifest["recipient"]), created_at=html.escape(manifest["created_at"]),
        created_by=html.escape(manifest["created_by"]), sections="\n".join(sections))

