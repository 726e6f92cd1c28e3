"""The record of processing activities and the inputs of the impact assessment (R40; issue 24),
**read from the system, not typed**: a commune's cameras and their purposes, who receives the
images, how long they are kept, and the security measures actually in force — masks approved,
second factors, the register's chain and checkpoints, erasure and its backstop, holds, the keys
that sign evidence, the links and the object lock of the process making the record (`in_force`).
What Vigie cannot see (encryption at rest, backups) is said as such, never claimed. As JSON and as
a printable page in French."""

from __future__ import annotations

from datetime import UTC, date, datetime
from html import escape
from typing import Any

import asyncpg

from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import ObjectStore
from vigie.records import legal_time
from vigie.records.authorisations import handover_allowed, list_authorisations
from vigie.security.accounts import TOTP_REQUIRED_ROLES

FORMAT = "vigie-processing-record/1"

CAMERAS_SQL = """
SELECT c.slug, c.name, c.location, c.state, c.purposes, ca.reference AS authorisation_ref,
       ca.valid_until AS authorisation_expires, ca.authorisation_state,
       least(coalesce(c.retention_days, m.retention_days), m.retention_days) AS retention_days,
       EXISTS (SELECT 1 FROM masks k WHERE k.camera_id = c.id AND k.approved_at IS NOT NULL)
           AS masks_approved,
       (SELECT max(version) FROM masks k WHERE k.camera_id = c.id AND k.approved_at IS NOT NULL)
           AS mask_version, h.below_norms
FROM cameras c JOIN communes m ON m.slug = c.commune
JOIN camera_authorisation ca ON ca.camera_id = c.id
LEFT JOIN camera_health h ON h.camera_id = c.id
WHERE c.commune = $1 ORDER BY c.slug
"""
USERS_SQL = """
SELECT r AS role, count(*) AS accounts, count(*) FILTER (WHERE totp_secret IS NOT NULL) AS totp
FROM users, unnest(roles) r WHERE $1 = ANY(communes) AND NOT disabled GROUP BY r ORDER BY r
"""


async def processing_record(pool: asyncpg.Pool, commune: str, *,
                            in_force: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """`in_force`: measures_in_force() of the caller, when it has the settings and the store."""
    row = await pool.fetchrow("SELECT * FROM communes WHERE slug = $1", commune)
    if row is None:
        return None
    cameras = [dict(r) for r in await pool.fetch(CAMERAS_SQL, commune)]
    for c in cameras:
        c["purposes"] = list(c["purposes"])
        if c["authorisation_expires"] is not None:
            c["authorisation_expires"] = c["authorisation_expires"].isoformat()
    hours = row["police_hours"]
    handover = bool(hours and hours not in ("{}", {})) and await handover_allowed(pool, commune)
    authorisations = [
        {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in a.items()}
        for a in await list_authorisations(pool, commune)]
    roles = [dict(r) for r in await pool.fetch(USERS_SQL, commune)]
    backstop = {r["bucket"]: r["lifecycle_backstop"] for r in await pool.fetch(
        "SELECT bucket, lifecycle_backstop FROM retention_state")}
    last_checkpoint = await pool.fetchval("SELECT max(at) FROM audit_checkpoints")
    register_rows = await pool.fetchval("SELECT count(*) FROM audit_log WHERE commune = $1",
                                        commune)
    holds = await pool.fetchval("SELECT count(*) FROM holds WHERE commune = $1 AND state = "
                                "'active'", commune)
    keys = [dict(r) for r in await pool.fetch(
        "SELECT purpose, fingerprint, first_seen FROM signing_keys WHERE retired_at IS NULL "
        "ORDER BY purpose")]
    for k in keys:
        k["first_seen"] = k["first_seen"].isoformat()
    purposes = sorted({p for c in cameras for p in c["purposes"]})
    return {
        "format": FORMAT, "made_at": datetime.now(UTC).isoformat(),
        "commune": {"slug": row["slug"], "name": row["name"], "time_zone": row["time_zone"]},
        "controller": row["controller"], "rights_contact": row["rights_contact"],
        "purposes": purposes,
        "authorisations": authorisations,
        "cameras": cameras,
        "recipients": ["police municipale (agents désignés et habilités)"]
        + (["police nationale (hors des heures de la police municipale, bascule)"]
           if handover else [])
        + ["officiers de police judiciaire, sur réquisition", "personnes filmées (droit d'accès)"],
        "retention": {"commune_days": row["retention_days"],
                      "cameras_days": sorted({c["retention_days"] for c in cameras}),
                      "erasure": "automatic, per camera, journaled; at most 30 days (R4)",
                      "lifecycle_backstop": backstop},
        "security_measures": {
            "privacy_masks": {"cameras": len(cameras),
                              "with_approved_masks": sum(c["masks_approved"] for c in cameras),
                              "fail_closed": True},
            "accounts": roles,
            "second_factor_required_for": sorted(TOTP_REQUIRED_ROLES),
            "register": {"rows_for_commune": register_rows, "hash_chained": True,
                         "last_checkpoint": last_checkpoint.isoformat()
                         if last_checkpoint else None},
            "active_holds": holds,
            "signing_keys": keys,
            **({"in_force": in_force} if in_force else {}),
            "not_seen_by_vigie": (
                [] if in_force else ["encryption of the links between parts (TLS)"])
            + ["encryption at rest of the object store (set on the store, not visible over S3)",
               "database backups (made by the backup job, not visible to the services)"],
        },
    }


async def measures_in_force(common: CommonSettings, store: ObjectStore,
                            holds_bucket: str) -> dict[str, Any]:
    """What the process making the record uses (its settings, and the object store asked): in
    production every service refuses a plain link the same way (vigie.plumbing.settings)."""
    return {
        "production_mode": not common.local_mode,
        "nats": ("TLS with a client certificate" if common.nats_tls_cert
                 else "TLS" if common.nats_tls_ca else "plain (one machine)"),
        "postgresql": (f"TLS, server verified ({common.postgres_sslmode})"
                       if common.postgres_server_verified else "not verified (one machine)"),
        "object_store": "HTTPS" if common.s3_secure else "plain HTTP (one machine)",
        "hold_copies_under_object_lock": await store.object_lock(holds_bucket),
    }


def _t(iso: str | None, time_zone: str) -> str:
    """A time as the commune's legal time (issue 37: Paris's was written in the code)."""
    if not iso:
        return "—"
    return f"{legal_time.local(datetime.fromisoformat(iso), time_zone):%d/%m/%Y %H:%M} " \
        f"({legal_time.label(time_zone)})"


def _in_force_html(links: dict[str, Any] | None) -> str:
    if not links:
        return ""
    lock = "oui" if links["hold_copies_under_object_lock"] else "non (stockage sans verrouillage)"
    mode = ("production : toute liaison en clair est refusée" if links["production_mode"]
            else "machine unique")
    return (f"<li>Liaisons du service qui établit cette fiche (mode {mode}) : "
            f"NATS {escape(links['nats'])} ; PostgreSQL {escape(links['postgresql'])} ; "
            f"stockage {escape(links['object_store'])}.</li>\n"
            f"<li>Copies des gels sous verrouillage d'objet (rétention légale S3) : {lock}.</li>")


def as_html(record: dict[str, Any]) -> str:
    s = record["security_measures"]
    zone = record["commune"].get("time_zone", legal_time.DEFAULT_TIME_ZONE)
    cams = "\n".join(
        f"<tr><td>{escape(c['name'])}</td><td>{escape(c['location'])}</td>"
        f"<td>{escape(c['state'])}</td><td>{escape(', '.join(c['purposes']) or '—')}</td>"
        f"<td>{escape(c['authorisation_ref'] or '—')}"
        f"{' (expire le ' + c['authorisation_expires'] + ')' if c['authorisation_expires'] else ''}"
        f"</td><td>{c['retention_days']} j</td>"
        f"<td>{'oui (v' + str(c['mask_version']) + ')' if c['masks_approved'] else 'non'}</td>"
        f"<td>{'non : ' + escape(c['below_norms']) if c.get('below_norms') else 'oui'}</td>"
        f"</tr>" for c in record["cameras"])
    accounts = ", ".join(f"{escape(a['role'])} : {a['accounts']} ({a['totp']} avec second facteur)"
                         for a in s["accounts"]) or "aucun"
    li = "".join
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Registre des traitements — vidéoprotection</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:.3em .5em;text-align:left}}</style></head><body>
<h1>Fiche de registre des traitements — vidéoprotection de {escape(record['commune']['name'])}</h1>
<p>Établie le {_t(record['made_at'], zone)} à partir de la configuration de Vigie (rien n'y est saisi à
la main). Responsable du traitement : {escape(record['controller'] or '— (à renseigner)')}.
Exercice des droits : {escape(record['rights_contact'] or '— (à renseigner)')}.</p>
<h2>Finalités</h2><ul>{li(f'<li>{escape(p)}</li>' for p in record['purposes']) or '<li>—</li>'}</ul>
<h2>Autorisations préfectorales</h2><ul>{li(
    f"<li>{escape(a['reference'])} : du {a['granted_on']} au {a['valid_until']} ({a['state']}), "
    f"destinataires {escape(', '.join(a['recipients']))}, conservation "
    f"{a['retention_min_days']}–{a['retention_max_days']} j, caméras "
    f"{escape(', '.join(a['cameras']) or '—')}</li>" for a in record['authorisations'])
    or '<li>— (aucune : aucune caméra ne filme)</li>'}</ul>
<h2>Destinataires</h2><ul>{li(f'<li>{escape(r)}</li>' for r in record['recipients'])}</ul>
<h2>Durée de conservation</h2>
<p>{record['retention']['commune_days']} jours pour la commune ; par caméra :
{', '.join(str(d) for d in record['retention']['cameras_days']) or '—'} jours. Effacement
automatique, journalisé, 30 jours au plus.</p>
<h2>Caméras</h2>
<table><thead><tr><th>Caméra</th><th>Lieu</th><th>État</th><th>Finalités</th>
<th>Autorisation</th><th>Conservation</th><th>Masques approuvés</th>
<th>Normes techniques (R35)</th></tr></thead><tbody>
{cams or '<tr><td colspan="8">Aucune caméra.</td></tr>'}</tbody></table>
<h2>Mesures de sécurité en place</h2><ul>
<li>Masquage des espaces privés à l'écran et dans l'enregistrement, sans image en cas de doute :
{s['privacy_masks']['with_approved_masks']} caméra(s) sur {s['privacy_masks']['cameras']} ont des
masques approuvés.</li>
<li>Comptes nominatifs : {accounts} ; second facteur exigé pour :
{escape(', '.join(s['second_factor_required_for']))}.</li>
<li>Registre des accès chaîné : {s['register']['rows_for_commune']} entrées pour la commune ;
dernier point de contrôle signé : {_t(s['register']['last_checkpoint'], zone)}.</li>
<li>Gels en cours (réquisitions, demandes d'accès) : {s['active_holds']}.</li>
<li>Clés de signature des preuves : {len(s['signing_keys'])}.</li>
{_in_force_html(s.get('in_force'))}
<li>Non vus par Vigie, à documenter par l'exploitant :
{escape(', '.join(s['not_seen_by_vigie']))}.</li></ul>
</body></html>
"""
