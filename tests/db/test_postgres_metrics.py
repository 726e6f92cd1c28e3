"""PostgreSQL is watched (issue 36): Debian's prometheus-postgres-exporter, configured as Compose
and Kubernetes configure it (address, user, password file), connects as the monitoring role that
`vigie init` makes, and exports every series the alert rules read. The role reads statistics,
never a table of Vigie's (R38: least privilege)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import asyncpg
import pytest
from vigie.local import servers
from vigie.plumbing.db.roles import MONITOR_ROLE, ensure_monitor_role

from tests.deploy.monitoring import alert_rules
from tests.harness import REPO, eventually

pytestmark = pytest.mark.integration


async def test_the_exporter_reads_postgres_as_the_monitoring_role_and_nothing_more_R38(
        pg_server: servers.PostgresServer, db: asyncpg.Pool, pg_schema: str,
        tmp_path: Path) -> None:
    password = "monitor-" + os.urandom(8).hex()
    async with db.acquire() as conn:
        await ensure_monitor_role(conn, schema=pg_schema, password=password)
        await ensure_monitor_role(conn, schema=pg_schema, password=password)  # again: idempotent
    dsn = f"postgresql://{MONITOR_ROLE}:{password}@127.0.0.1:{pg_server.port}/{pg_server.database}"
    monitor = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await monitor.fetch(f'SELECT * FROM "{pg_schema}".users')
        # pg_monitor: it sees every session's state (what the exporter reports), not their data.
        assert await monitor.fetchval("SELECT count(*) FROM pg_stat_activity "
                                      "WHERE state IS NOT NULL") >= 1
    finally:
        await monitor.close()

    binary = shutil.which("prometheus-postgres-exporter")
    assert binary, "make setup installs Debian's prometheus-postgres-exporter"
    password_file = tmp_path / "postgres_password_monitor"
    password_file.write_text(password + "\n")
    port = servers.free_port()
    exporter = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        env={"PATH": os.environ["PATH"],
             "DATA_SOURCE_URI": f"127.0.0.1:{pg_server.port}/{pg_server.database}"
                                "?sslmode=disable",
             "DATA_SOURCE_USER": MONITOR_ROLE, "DATA_SOURCE_PASS_FILE": str(password_file)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def scraped() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=10) as answer:
                    text: str = answer.read().decode()
            except OSError:
                return ""
            return text if "\npg_up 1" in text else ""

        text = await eventually(scraped, timeout_s=30, message="the exporter has no pg_up 1")
        used = {n for rule in alert_rules() for n in re.findall(r"\bpg_[a-z0-9_]+", rule["expr"])}
        assert {"pg_up", "pg_stat_database_numbackends", "pg_settings_max_connections"} <= used
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                 if line and not line.startswith("#")}
        assert used <= names, f"alerts on series the exporter does not make: {used - names}"
        assert any(line.startswith("pg_stat_database_numbackends{")
                   and f'datname="{pg_server.database}"' in line for line in text.splitlines())
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)
    # Compose and Kubernetes give it the same three settings.
    compose = (REPO / "docker-compose.yml").read_text()
    assert "DATA_SOURCE_PASS_FILE: /run/secrets/postgres_password_monitor" in compose
