"""The hand-over file for the electronic-ticket (PVe) tool: one ZIP per offence, sealed like the
requisition exports (manifest with every file's SHA-256, Ed25519 signature by the deployment's
export key, SHA256SUMS), so `vigie export verify` and the standard tools check it
(docs/verbalisation.md gives its format). Vigie does not issue the ticket itself."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigie.custody.exports.seal import seal, zip_folder
from vigie.plumbing.storage.objects import ObjectStore
from vigie.security.signing import SigningKey
from vigie.verbalisation.messages import OffenceRecord

FORMAT = "vigie-offence/1"


def offence_document(offence: OffenceRecord) -> dict[str, Any]:
    """offence.json: what the PVe tool needs, in its own words."""
    return {
        "format": FORMAT,
        "offence_id": offence.id,
        "commune": offence.commune,
        "camera": {"id": f"{offence.commune}/{offence.camera}", "name": offence.camera_name,
                   "place": offence.place},
        "offence": {"code": offence.offence_code, "label": offence.offence_label,
                    "article": offence.offence_article, "natinf": offence.natinf},
        "vehicle": {"plate": offence.plate, "country": offence.plate_country},
        "agent": {"number": offence.agent_number},
        "noted_from": "live",  # R31: only ever from the live image
        "stills": [{"file": f"cliches/{s.n}.jpg", "capture_time": s.capture_time.isoformat(),
                    "sha256": s.sha256, "width": s.width, "height": s.height,
                    "mask_version": s.mask_version} for s in offence.stills],
        "created_at": offence.created_at.isoformat(),
        "ready_at": offence.ready_at.isoformat() if offence.ready_at else None,
    }


LISEZMOI = """CONSTATATION PAR VIDÉO-VERBALISATION — infraction n° {id}

Fichier de remise à l'outil de procès-verbal électronique (PVe). Vigie ne dresse pas l'avis de
contravention : l'agent le fait dans l'outil PVe à partir de ces éléments.

  offence.json      l'infraction (code, libellé, article, NATINF s'il est connu), la plaque et son
                    pays, le numéro de l'agent, la caméra et son emplacement, les clichés
  cliches/*.jpg     les clichés (véhicule, plaque), pris sur l'image en direct, masques de
                    confidentialité appliqués, avec date, heure, caméra et lieu incrustés

Vérification avec les outils standard, dans ce dossier :
  sha256sum -c SHA256SUMS
  openssl pkeyutl -verify -pubin -inkey cle-publique.pem -rawin -in manifest.json -sigfile manifest.sig
L'empreinte de la clé ({fingerprint}) est publiée par le service de vidéoprotection.

Les clichés sont effacés par Vigie après la remise (délai documenté, un mois au plus).
"""


async def build(offence: OffenceRecord, store: ObjectStore, bucket: str, key: SigningKey,
                by: str) -> tuple[bytes, str]:
    """The ZIP's bytes and SHA-256; every still checked against its recorded SHA-256 first."""
    with tempfile.TemporaryDirectory(prefix="vigie-offence-") as tmp:
        root = f"infraction-{offence.id}"
        work = Path(tmp) / root
        (work / "cliches").mkdir(parents=True)
        for still in offence.stills:
            data = await store.get(bucket, f"offences/{offence.commune}/{offence.id}/{still.n}.jpg")
            if hashlib.sha256(data).hexdigest() != still.sha256:
                raise ValueError(f"still {still.n} does not match its SHA-256: not handed over")
            (work / "cliches" / f"{still.n}.jpg").write_bytes(data)
        document = offence_document(offence)
        (work / "offence.json").write_text(json.dumps(document, ensure_ascii=False, indent=2)
                                           + "\n", encoding="utf-8")
        (work / "LISEZMOI.txt").write_text(
            LISEZMOI.format(id=offence.id, fingerprint=key.fingerprint()), encoding="utf-8")
        manifest = {"format": FORMAT, "offence_id": offence.id, "commune": offence.commune,
                    "created_at": datetime.now(UTC).isoformat(), "created_by": by,
                    "signing_key": {"algorithm": "Ed25519", "fingerprint": key.fingerprint(),
                                    "file": "cle-publique.pem"}}
        await asyncio.to_thread(seal, work, manifest, key)
        target = Path(tmp) / f"{root}.zip"
        await asyncio.to_thread(zip_folder, work, target, root)
        data = target.read_bytes()
    return data, hashlib.sha256(data).hexdigest()
