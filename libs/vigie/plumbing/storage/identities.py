"""One object-store identity per service, each with an IAM policy on its buckets and prefixes
(issue 25; REGULATION.md R4, R12, R38: least privilege). The recorder writes recordings and cannot
delete one; only retention deletes recordings; the gateway reads; retention puts the copies of the
holds in the holds bucket, under a legal hold no identity can delete past (only retention erases a
version there, and only after lifting its legal hold); verbalisation keeps to its offences' stills;
ingest and masking have no access at all. The policies are AWS IAM documents, which SeaweedFS (the
identity file `vigie s3-config` writes) and MinIO (`mc admin policy create`, docs/deploy.md) both
enforce.

Resources name buckets by their suffix (`*recordings`): the same policy holds whatever the
deployment's bucket prefix, and in the test suite, where each test has its own."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigie.plumbing.catalog import SERVICES

ADMIN = "vigie-admin"  # `vigie init` and the operator's CLI: buckets, lifecycle rules
HOLDS_PREFIX = "holds/"  # evidence copies of holds, in the holds bucket (vigie.custody.holds)
OFFENCES_PREFIX = "offences/"  # offence stills and hand-over files (services/verbalisation)

READ = ["s3:GetObject"]
READ_VERSION = ["s3:GetObjectVersion"]  # a hold copy is read by the version put under legal hold
LIST = ["s3:ListBucket"]
WRITE = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
DELETE = ["s3:DeleteObject"]
LOCK_CONFIG = ["s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"]
HOLD = ["s3:PutObjectLegalHold", "s3:GetObjectLegalHold"]
LIFECYCLE = ["s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"]


def _bucket(kind: str) -> str:
    return f"arn:aws:s3:::*{kind}"


def _objects(kind: str, prefix: str = "") -> str:
    return f"arn:aws:s3:::*{kind}/{prefix}*"


def _allow(actions: list[str], *resources: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": list(resources)}


# What each service may do; anything not allowed is refused.
STATEMENTS: Mapping[str, list[dict[str, Any]]] = {
    "ingest": [],  # RTSP in, frames out on the bus: never the object store
    "masking": [],
    "recorder": [_allow(WRITE + READ, _objects("recordings")),
                 _allow(LIST, _bucket("recordings"))],
    "viewer-gateway": [
        _allow(READ, _objects("recordings"), _objects("evidence"), _objects("exports")),
        _allow(READ + READ_VERSION, _objects("holds")),
        _allow(LIST, _bucket("recordings"), _bucket("evidence"), _bucket("exports"),
               _bucket("holds")),
        # Whether hold copies are under object lock, for the record of processing (R40). It
        # writes nothing there: a hold placed here is copied by the retention service.
        _allow(LOCK_CONFIG, _bucket("holds"))],
    "verbalisation": [
        _allow(READ + WRITE + DELETE, _objects("evidence", OFFENCES_PREFIX)),
        _allow(LIST, _bucket("evidence"))],
    "retention": [
        _allow(READ + WRITE + DELETE, _objects("recordings"), _objects("evidence"),
               _objects("exports")),
        _allow(LIST + LIFECYCLE, _bucket("recordings"), _bucket("evidence"), _bucket("exports")),
        # A hold's copies, put under a legal hold (exports, holds placed over the API); once the
        # hold is released: lift each copy's legal hold, erase every version.
        _allow(WRITE, _objects("holds", HOLDS_PREFIX)),
        _allow(READ + READ_VERSION + DELETE + HOLD + ["s3:DeleteObjectVersion"],
               _objects("holds")),
        _allow(LIST + LOCK_CONFIG + ["s3:ListBucketVersions"], _bucket("holds"))],
}


def identity_name(service: str) -> str:
    return "vigie-" + service


def policy(service: str) -> dict[str, Any]:
    """The IAM policy document of `service`'s identity."""
    statements = STATEMENTS[service]
    return {"Version": "2012-10-17",
            "Statement": statements or [{"Effect": "Deny", "Action": ["s3:*"],
                                         "Resource": ["arn:aws:s3:::*"]}]}


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str

    @classmethod
    def generate(cls, name: str) -> Keys:
        return cls(name.replace("vigie-", "v") + secrets.token_hex(6), secrets.token_hex(20))


def key_env(service: str) -> tuple[str, str]:
    """Where the deployment keeps a service's keys (its container gets them as VIGIE_S3_*)."""
    up = service.upper().replace("-", "_")
    return f"VIGIE_S3_ACCESS_KEY_{up}", f"VIGIE_S3_SECRET_KEY_{up}"


def seaweedfs_config(admin: Keys, services: Mapping[str, Keys]) -> dict[str, Any]:
    """SeaweedFS's identity file (`weed server -s3.config=…`): the administrator, and one identity
    per service bound to its named policy."""
    identities: list[dict[str, Any]] = [{
        "name": ADMIN, "credentials": [{"accessKey": admin.access_key,
                                        "secretKey": admin.secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]
    for service, keys in services.items():
        identities.append({
            "name": identity_name(service),
            "credentials": [{"accessKey": keys.access_key, "secretKey": keys.secret_key}],
            "actions": [], "policyNames": [identity_name(service)]})
    return {"identities": identities,
            "policies": [{"name": identity_name(s), "content": json.dumps(policy(s))}
                         for s in services]}


def generate_keys() -> dict[str, Keys]:
    return {s: Keys.generate(identity_name(s)) for s in SERVICES}


def policies_markdown() -> str:
    """The policies as the table docs/security.md shows (a test keeps them the same)."""
    rows = ["| identity | may | on |", "|---|---|---|"]
    for service in SERVICES:
        for st in STATEMENTS[service] or [{"Action": ["nothing"], "Resource": ["—"]}]:
            actions = ", ".join(a.removeprefix("s3:") for a in st["Action"])
            on = ", ".join(f"`{r.removeprefix('arn:aws:s3:::')}`" if r != "—" else r
                           for r in st["Resource"])
            rows.append(f"| `{identity_name(service)}` | {actions} | {on} |")
    return "\n".join(rows)
