"""`vigie run`: the whole of Vigie on one machine, as children of one supervisor.

Order: nats-server, PostgreSQL, the S3 endpoint, simulated cameras; then `vigie init` in-process,
the demo seed, and the six services. A child that dies is restarted with a counted, logged backoff.
SIGINT/SIGTERM stops services first, then servers, in the reverse order of starting, within 30 s.
Everything lives under one data folder and survives a restart.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from vigie.local import demo
from vigie.local.servers import (
    ManagedProcess,
    NatsServer,
    PostgresServer,
    ServerStartError,
    port_is_free,
    start_lifecycle_worker,
    start_nats,
    start_nats_cluster,
    start_postgres,
    start_rtsp_cameras,
    start_seaweedfs,
)
from vigie.operations.provision import provision
from vigie.plumbing.bus.permissions import ServerTls
from vigie.plumbing.bus.streams import StreamLimits
from vigie.plumbing.catalog import NATS_CERTIFICATE, NATS_USER, SERVICES
from vigie.plumbing.certs import init_folder
from vigie.plumbing.db.roles import MONITOR_ROLE, role_name
from vigie.plumbing.log import get_logger
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.identities import Keys, generate_keys
from vigie.security.accounts import totp_uri
from vigie.security.signing import SigningKey

log = get_logger("vigie.run")

STOP_BUDGET_S = 30.0
SUBSCRIBERS = "subscribers.json"  # `vigie subscriber add` on the embedded default
# The services that share cameras between replicas (vigie.cameras); the gateway, verbalisation
# and retention run once here (the gateway's sessions and retention's sweep are not shared yet).
SCALABLE = ("ingest", "masking", "recorder")
MAX_REPLICAS = 8


def child_names(service: str, replicas: int) -> list[str]:
    if service not in SCALABLE or replicas == 1:
        return [service]
    return [f"{service}-{k}" for k in range(1, replicas + 1)]


class RunError(Exception):
    """A problem that stops `vigie run` before anything runs, told in one line."""


@dataclass(frozen=True)
class Ports:
    nats: int
    postgres: int
    s3: int
    rtsp: int
    gateway: int
    services: dict[str, int]
    cluster: int = 1  # NATS nodes

    @classmethod
    def from_base(cls, base: int, gateway: int, replicas: int = 1, cluster: int = 1) -> Ports:
        """One HTTP port per child (``ingest``, or ``ingest-1``… with replicas)."""
        svc: dict[str, int] = {"viewer-gateway": gateway}
        port = base + 10
        for service in SERVICES:
            for name in child_names(service, replicas):
                if name in svc:
                    continue
                port += port == gateway  # the web interface's port is taken
                svc[name], port = port, port + 1
        return cls(base + 1, base + 3, base + 4, base + 5, gateway, svc, cluster)

    @property
    def s3_internal(self) -> list[int]:
        """SeaweedFS's master, volume, filer and gRPC ports: base+60…base+66."""
        return list(range(self.nats + 59, self.nats + 66))

    def all(self) -> dict[str, int]:
        return {"nats": self.nats, "postgres": self.postgres, "s3": self.s3, "rtsp": self.rtsp,
                "nats metrics": self.nats_metrics, "postgres metrics": self.postgres_metrics,
                "object store metrics": self.s3_metrics,
                **{f"object store {i + 1}": p for i, p in enumerate(self.s3_internal)},
                **{f"nats node {i + 2}": p for i, p in enumerate(self.nats_nodes[1:])},
                **{f"nats route {i + 1}": p for i, p in enumerate(self.nats_routes)},
                **{f"service {k}": v for k, v in self.services.items()}}

    @property
    def nats_metrics(self) -> int:
        """`vigie nats-exporter` (base+7): NATS's figures for Prometheus."""
        return self.nats + 6

    @property
    def postgres_metrics(self) -> int:
        """Debian's prometheus-postgres-exporter (base+8), as the role vigie_monitor."""
        return self.nats + 7

    @property
    def s3_metrics(self) -> int:
        """SeaweedFS's own /metrics (base+9)."""
        return self.nats + 8

    @property
    def nats_nodes(self) -> list[int]:
        """Client ports of the NATS nodes: base+1, then base+41… in a cluster."""
        return [self.nats, *(self.nats + 40 + i for i in range(len(self.nats_routes) - 1))]

    @property
    def nats_routes(self) -> list[int]:
        return list(range(self.nats + 50, self.nats + 50 + self.cluster)) if self.cluster > 1 \
            else []

    @property
    def nats_url(self) -> str:
        # TLS with client certificates, as in production: a police system subscribes here with
        # its own certificate (issue 39), and every service presents its own.
        return ",".join(f"tls://127.0.0.1:{p}" for p in self.nats_nodes)


@dataclass
class Child:
    name: str
    process: ManagedProcess
    service: str = ""
    restarts: int = 0
    next_start: float = 0.0


def check_data_dir(data: Path) -> None:
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write to data folder {data}: {exc.strerror or exc}") from None


def check_ports(ports: Ports) -> None:
    for what, port in ports.all().items():
        if not port_is_free(port):
            raise RunError(f"port {port} ({what}) is already in use; stop what uses it or pass "
                           f"--port-base/--http-port")




def pki(data: Path) -> Path:
    """The embedded default's own CA and certificates (`vigie.plumbing.certs.init_folder`); subscribers'
    certificates in its `subscribers/`."""
    return data / "pki"


def nats_server_tls(data: Path) -> ServerTls:
    folder = pki(data)
    return ServerTls(str(folder / "nats.pem"), str(folder / "nats.key"), str(folder / "ca.pem"))


def load_subscribers(data: Path) -> dict[str, list[str]]:
    """The police systems `vigie subscriber add` gave a NATS user here: name → communes."""
    path = data / SUBSCRIBERS
    return dict(json.loads(path.read_text())) if path.exists() else {}


def save_subscribers(data: Path, subscribers: dict[str, list[str]]) -> None:
    path = data / SUBSCRIBERS
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(subscribers, indent=2, sort_keys=True))
    tmp.replace(path)


def load_secrets(data: Path) -> dict[str, Any]:
    """Generated once into the data folder (0600); keys added by newer versions are filled in."""
    path = data / "secrets.json"
    values: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "s3_access_key": lambda: "vigie" + secrets.token_hex(6),
        "s3_secret_key": lambda: secrets.token_hex(20),
        # One object-store identity per service (issue 25), as in production.
        "s3_services": lambda: {s: {"access_key": k.access_key, "secret_key": k.secret_key}
                                for s, k in generate_keys().items()},
        # One database role per service (issue 25), as in production.
        "pg_passwords": lambda: {s: secrets.token_urlsafe(18) for s in SERVICES},
        "pg_monitor_password": lambda: secrets.token_urlsafe(18),  # the metrics exporter's
        "register_key": lambda: secrets.token_hex(32),  # legacy: checks pre-issue-25 checkpoints
        "register_signing_key": lambda: SigningKey.generate().private_pem(),
        "export_key": lambda: SigningKey.generate().private_pem(),
        "recording_key": lambda: SigningKey.generate().private_pem(),
        "totp_key": lambda: secrets.token_hex(32),  # seals TOTP secrets: the gateway's alone
    }
    missing = {k: make() for k, make in wanted.items() if k not in values}
    if missing:
        values.update(missing)
        path.write_text(json.dumps(values, indent=2))
        path.chmod(0o600)
    return values


def service_dsn(pg: PostgresServer, sec: dict[str, Any], service: str) -> str:
    """`service`'s own database role (the migrations' role owns the tables)."""
    return (f"postgresql://{role_name(service)}:{sec['pg_passwords'][service]}@127.0.0.1:"
            f"{pg.port}/{pg.database}")


def default_footage() -> Path | None:
    env = os.environ.get("VIGIE_FOOTAGE")
    candidates = [Path(env)] if env else [Path.cwd().parent / "shared" / "footage"]
    return next((p for p in candidates if p.is_dir()), None)


def s3_keys(sec: dict[str, Any], service: str | None) -> Keys:
    """`service`'s object-store identity (None: the administrator's, for `vigie init`)."""
    if service is None:
        return Keys(sec["s3_access_key"], sec["s3_secret_key"])
    return Keys(**sec["s3_services"][service])


def common_env(*, ports: Ports, pg_dsn: str, sec: dict[str, Any], user: str,
               service: str | None, certificates: Path) -> dict[str, str]:
    """Its NATS certificate is its account (`verify_and_map`): no NATS password."""
    name = NATS_CERTIFICATE[user]
    return {
        "VIGIE_LOCAL_MODE": "true",
        "VIGIE_NATS_URL": ports.nats_url,
        "VIGIE_NATS_USER": user,
        "VIGIE_NATS_TLS_CA": str(certificates / "ca.pem"),
        "VIGIE_NATS_TLS_CERT": str(certificates / f"{name}.pem"),
        "VIGIE_NATS_TLS_KEY": str(certificates / f"{name}.key"),
        "VIGIE_POSTGRES_DSN": pg_dsn,
        "VIGIE_S3_ENDPOINT": f"127.0.0.1:{ports.s3}",
        "VIGIE_S3_ACCESS_KEY": s3_keys(sec, service).access_key,
        "VIGIE_S3_SECRET_KEY": s3_keys(sec, service).secret_key,
        "VIGIE_LOG_FORMAT": "json",
    }


def service_env(*, ports: Ports, pg_dsn: str, sec: dict[str, Any], service: str,
                replica: str, certificates: Path) -> dict[str, str]:
    """What one replica of `service` is given: its own NATS user, database role and
    object-store identity (vigie.plumbing.catalog's one definition, as Compose and Kubernetes), and the
    keys that service alone holds."""
    env = {**common_env(ports=ports, pg_dsn=pg_dsn, sec=sec, service=service,
                        user=NATS_USER[service], certificates=certificates),
           "VIGIE_REPLICA": replica}
    prefix = f"VIGIE_{service.upper().replace('-', '_')}_"
    env[prefix + "HTTP_PORT"] = str(ports.services[replica])
    env[prefix + "HTTP_HOST"] = "127.0.0.1"
    if service in ("retention", "verbalisation"):  # seal exports, offence files
        env["VIGIE_EXPORT_KEY"] = sec["export_key"]
    if service == "retention":  # signs the register's head (not the gateway)
        env["VIGIE_REGISTER_SIGNING_KEY"] = sec["register_signing_key"]
    if service == "viewer-gateway":  # checks checkpoints made before issue 25
        env["VIGIE_REGISTER_KEY"] = sec["register_key"]
        env["VIGIE_TOTP_KEY"] = sec["totp_key"]  # and seals TOTP secrets
    if service == "recorder":  # signs each segment's link as it stores it
        env["VIGIE_RECORDING_KEY"] = sec["recording_key"]
    return env


class Supervisor:
    def __init__(self, data: Path, ports: Ports, footage: Path | None,
                 replicas: int = 1) -> None:
        self.data = data
        self.replicas = replicas
        self.ports = ports
        self.footage = footage
        self.servers: dict[str, Child] = {}  # started first, stopped last, restarted like children
        self.children: dict[str, Child] = {}
        self.nats_nodes: list[NatsServer] = []
        self.subscribers: dict[str, list[str]] = {}  # as the running nats-servers know them
        self.stop = asyncio.Event()

    def _state_file(self) -> Path:
        return self.data / "run.json"

    def write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "ports": {"nats": self.ports.nats, "postgres": self.ports.postgres,
                      "s3": self.ports.s3, "rtsp": self.ports.rtsp,
                      "services": self.ports.services,
                      # What a Prometheus scrapes beside the services (docs/operations.md).
                      "metrics": {"nats": self.ports.nats_metrics,
                                  **({"postgres": self.ports.postgres_metrics}
                                     if "postgres-metrics" in self.servers else {}),
                                  "seaweedfs": self.ports.s3_metrics}},
            "web": f"http://127.0.0.1:{self.ports.gateway}/",
            "subscribers": self.subscribers,
            "servers": {name: c.process.pid for name, c in self.servers.items()},
            "server_restarts": {name: c.restarts for name, c in self.servers.items()},
            "services": {name: {"service": c.service, "pid": c.process.pid,
                                "restarts": c.restarts, "alive": c.process.alive()}
                         for name, c in self.children.items()},
        }
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self._state_file())

    async def start(self) -> None:
        # Servers are started from the loop's executor threads, which live as long as the
        # supervisor: their death signal (tied to the forking thread) fires when it dies.
        sec = load_secrets(self.data)
        certificates_made = await asyncio.to_thread(init_folder, pki(self.data))
        if certificates_made:
            log.info("certificates_made", folder=str(pki(self.data)), made=certificates_made)
        tls, subscribers = nats_server_tls(self.data), load_subscribers(self.data)
        if self.ports.cluster > 1:
            self.nats_nodes = await asyncio.to_thread(
                start_nats_cluster, self.data / "nats-cluster", ports=self.ports.nats_nodes,
                cluster_ports=self.ports.nats_routes, passwords={}, lifeline=True, tls=tls,
                externals=subscribers)
            for node in self.nats_nodes:
                self.servers[node.process.name] = Child(node.process.name, node.process)
        else:
            nats = await asyncio.to_thread(
                start_nats, self.data / "nats", port=self.ports.nats, lifeline=True, tls=tls,
                externals=subscribers)
            self.nats_nodes = [nats]
            self.servers["nats-server"] = Child("nats-server", nats.process)
        self.subscribers = subscribers
        pg = await asyncio.to_thread(start_postgres, self.data / "postgres", port=self.ports.postgres,
                                 lifeline=True)
        self.servers["postgres"] = Child("postgres", pg.process)
        s3 = await asyncio.to_thread(
            start_seaweedfs, self.data / "s3", port=self.ports.s3,
            internal_ports=self.ports.s3_internal, access_key=sec["s3_access_key"],
            secret_key=sec["s3_secret_key"], lifeline=True, metrics_port=self.ports.s3_metrics,
            service_keys={s: s3_keys(sec, s) for s in SERVICES})
        self.servers["s3"] = Child("s3", s3.process)
        worker = await asyncio.to_thread(start_lifecycle_worker, s3, refresh_s=60, lifeline=True)
        self.servers["s3-lifecycle"] = Child("s3-lifecycle", worker)
        cameras = demo.demo_cameras(self.footage)
        clips, patterns = demo.camera_mounts(cameras, self.footage)
        rtsp = await asyncio.to_thread(
            start_rtsp_cameras, self.data / "cameras", clips=clips, patterns=patterns,
            port=self.ports.rtsp, lifeline=True)
        self.servers["cameras"] = Child("cameras", rtsp.process)

        admin_env = common_env(ports=self.ports, pg_dsn=pg.dsn, sec=sec, user="admin",
                               service=None, certificates=pki(self.data))
        common = CommonSettings.model_validate(
            {k.removeprefix("VIGIE_").lower(): v for k, v in admin_env.items()})
        urls = {f"{c.commune}-{c.slug}": rtsp.url(f"{c.commune}-{c.slug}") for c in cameras}
        seeded: dict[str, demo.Seeded | None] = {}

        async def _seed(conn: asyncpg.Connection) -> None:
            seeded["admin"] = await demo.seed(conn, cameras, urls)

        result = await provision(common, StreamLimits(replicas=min(3, self.ports.cluster)),
                                 seed=_seed, role_passwords=sec["pg_passwords"],
                                 monitor_password=sec["pg_monitor_password"])
        made = seeded.get("admin")
        if made:
            print(f"\nFirst administrator: login 'admin', password '{made.admin_password}' (shown "
                  f"once; change it after logging in)\n  TOTP second factor (required for "
                  f"administrators): secret {made.admin_totp}\n  "
                  f"{totp_uri('admin', made.admin_totp or '')}\n"
                  f"Demo agent listed for vidéo-verbalisation (Palaiseau): login "
                  f"'{demo.DEMO_AGENT}', password '{made.agent_password}'\n", flush=True)
        if result["lifecycle_rules"] is False:
            print("Note: the object store refused the lifecycle rules; the retention service "
                  "alone erases expired recordings.", flush=True)

        self._start_exporters(pg)
        for service in SERVICES:
            for name in child_names(service, self.replicas):
                env = {**os.environ, **service_env(
                    ports=self.ports, pg_dsn=service_dsn(pg, sec, service), sec=sec,
                    service=service, replica=name, certificates=pki(self.data))}
                argv = [sys.executable, "-m", "vigie.cli.main", "service", service]
                proc = ManagedProcess(name, argv, self.data / "logs" / f"{name}.log", env=env,
                                      lifeline=True).start()
                self.children[name] = Child(name, proc, service=service)
        self.write_state()
        print(f"Vigie is running. Web: http://127.0.0.1:{self.ports.gateway}/", flush=True)
        print(f"  NATS {self.ports.nats_url}  PostgreSQL 127.0.0.1:"
              f"{self.ports.postgres}  S3 http://127.0.0.1:{self.ports.s3}  cameras "
              f"rtsp://127.0.0.1:{self.ports.rtsp}/", flush=True)
        print(f"  Logs in {self.data / 'logs'}; `vigie status` shows health. Ctrl-C stops.",
              flush=True)

    def _start_exporters(self, pg: PostgresServer) -> None:
        """What a Prometheus scrapes beside the services, as Compose and Kubernetes run it: NATS's
        figures (`vigie nats-exporter`), PostgreSQL's (Debian's exporter, as vigie_monitor)."""
        logs = self.data / "logs"
        nats_exporter = [sys.executable, "-m", "vigie.cli.main", "nats-exporter",
                         "--listen", f"127.0.0.1:{self.ports.nats_metrics}",
                         *(a for n in self.nats_nodes
                           for a in ("--monitor", f"http://127.0.0.1:{n.monitor_port}"))]
        self.servers["nats-metrics"] = Child("nats-metrics", ManagedProcess(
            "nats-metrics", nats_exporter, logs / "nats-metrics.log", lifeline=True).start())
        binary = shutil.which("prometheus-postgres-exporter")
        if binary is None:
            log.warning("postgres_exporter_missing",
                        hint="apt install prometheus-postgres-exporter (make setup does)")
            return
        env = {**os.environ, "DATA_SOURCE_URI": f"127.0.0.1:{pg.port}/{pg.database}?sslmode=disable",
               "DATA_SOURCE_USER": MONITOR_ROLE,
               "DATA_SOURCE_PASS": load_secrets(self.data)["pg_monitor_password"]}
        self.servers["postgres-metrics"] = Child("postgres-metrics", ManagedProcess(
            "postgres-metrics", [binary, "--web.listen-address="
                                 f"127.0.0.1:{self.ports.postgres_metrics}"],
            logs / "postgres-metrics.log", env=env, lifeline=True).start())

    async def watch(self) -> None:
        """Restart a dead child — a service or a server it started (NATS, PostgreSQL, S3, the
        simulated cameras) — after a backoff that doubles with each restart (max 30 s)."""
        while not self.stop.is_set():
            now = time.monotonic()
            changed = self._follow_subscribers()
            for child in [*self.servers.values(), *self.children.values()]:
                if child.process.alive():
                    continue
                if child.next_start == 0.0:
                    code = child.process.proc.returncode if child.process.proc else None
                    delay = min(30.0, 0.5 * 2**child.restarts)
                    child.next_start = now + delay
                    log.warning("child_died", child=child.name, exit_code=code,
                                restarts=child.restarts, restart_in_s=delay)
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    child.process.start()
                    log.info("child_restarted", child=child.name, restarts=child.restarts)
                    changed = True
            if changed:
                self.write_state()
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=0.5)
            except TimeoutError:
                pass

    def _follow_subscribers(self) -> bool:
        """`vigie subscriber add` wrote a police system into subscribers.json: the nats-servers
        reload their configuration with its user (no restart, no file edited by hand)."""
        try:
            wanted = load_subscribers(self.data)
        except (OSError, ValueError) as exc:
            log.warning("subscribers_unreadable", error=str(exc))
            return False
        if wanted == self.subscribers:
            return False
        for node in self.nats_nodes:
            node.reconfigure(wanted)
        log.info("subscribers_reloaded", subscribers=sorted(wanted))
        self.subscribers = wanted
        return True

    def shutdown(self) -> None:
        deadline = time.monotonic() + STOP_BUDGET_S - 2
        for child in self.children.values():
            child.process.send_signal(signal.SIGTERM)
        for child in self.children.values():
            child.process.stop(timeout_s=max(1.0, min(15.0, deadline - time.monotonic())))
        for proc in reversed([c.process for c in self.servers.values()]):
            sig = signal.SIGINT if proc.name == "postgres" else signal.SIGTERM
            proc.stop(timeout_s=max(1.0, min(10.0, deadline - time.monotonic())), sig=sig)
        try:
            self._state_file().unlink()
        except FileNotFoundError:
            pass


async def _run(data: Path, ports: Ports, footage: Path | None, replicas: int) -> int:
    sup = Supervisor(data, ports, footage, replicas)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sup.stop.set)
    try:
        starting = asyncio.create_task(sup.start())
        stopping = asyncio.create_task(sup.stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():
            starting.cancel()
        else:
            starting.result()
            await sup.watch()
        return 0
    except (ServerStartError, ConnectionError, OSError) as exc:
        print(f"vigie run: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("Stopping Vigie…", flush=True)
        sup.shutdown()


def run(data: Path, *, port_base: int, http_port: int, footage: Path | None,
        replicas: int = 1, nats_cluster: int = 1) -> int:
    data = data.resolve()
    try:
        if not 1 <= replicas <= MAX_REPLICAS:
            raise RunError(f"--replicas must be between 1 and {MAX_REPLICAS}, not {replicas}")
        if nats_cluster not in (1, 3, 5):
            raise RunError(f"--nats-cluster must be 1, 3 or 5 nodes, not {nats_cluster}")
        check_data_dir(data)
        lock = open(data / "run.lock", "w")  # noqa: SIM115 - held for the supervisor's lifetime
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"another `vigie run` is using {data}") from None
        ports = Ports.from_base(port_base, http_port, replicas, nats_cluster)
        check_ports(ports)
    except RunError as exc:
        print(f"vigie run: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(data, ports, footage, replicas))
