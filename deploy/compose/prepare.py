"""Prepare a Compose deployment folder as docs/deploy.md's commands would (`make compose-check`):
a copy of docker-compose.yml and deploy/, every secret a file of deploy/secrets (`vigie secrets
init`), an .env with what this host needs (a smaller VIDEO), the deployment's
certificates (`vigie certs init`), the gateway's TLS pair, and each key readable by the user of
the container that reads it. Prints nothing but errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from vigie.plumbing import certs

REPO = Path(__file__).resolve().parents[2]
KEY_OWNERS = {"nats.key": 0, "postgres.key": 999, "seaweedfs.key": 1000}  # else the services'


def main(target: Path) -> int:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy(REPO / "docker-compose.yml", target)
    shutil.copytree(REPO / "deploy", target / "deploy")
    # This check's host has tens of GiB free, not the 160 GiB a commune's VIDEO gets: NATS
    # refuses a stream larger than 75 % of its disk ("insufficient storage resources").
    (target / ".env").write_text(f"VIGIE_BUS_VIDEO_MAX_BYTES={8 * 2**30}\n")
    subprocess.run([sys.executable, "-m", "vigie.cli.main", "secrets", "init", "--out",
                    str(target / "deploy" / "secrets")], check=True, stdout=subprocess.DEVNULL)
    folder = target / "deploy" / "certs"
    subprocess.run([sys.executable, "-m", "vigie.cli.main", "certs", "init", "--out",
                    str(folder)], check=True, stdout=subprocess.DEVNULL)
    ca = certs.load(folder, "ca")
    tls = target / "deploy" / "tls"
    cert, key = certs.issue(ca, "vigie-gateway", hosts=("localhost", "127.0.0.1"),
                            server=True).write(tls, "cert")
    key.rename(tls / "key.pem")
    for path in folder.glob("*.key"):
        os.chown(path, KEY_OWNERS.get(path.name, 10001), -1)
    os.chown(tls / "key.pem", 10001, -1)
    (folder / "ca.key").unlink()  # offline from now on: nothing here issues a certificate
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
