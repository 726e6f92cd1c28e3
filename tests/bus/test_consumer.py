"""The durable pull-consumer helper: clean SIGTERM with work in flight, redelivery after SIGKILL and
after a nats-server restart (STYLE.md "The bus", DESIGN.md invariant 2)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from vigie.local import servers
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.consumer import Outcome, PullWorker, durable_config
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.settings import CommonSettings

from tests.conftest import settings_env
from tests.harness import PROBE, PROBE_USER, eventually, unique

pytestmark = pytest.mark.integration
WORKER = Path(__file__).with_name("worker_program.py")


def _spawn_worker(
    env: dict[str, str], tmp: Path, tag: str, names: BusNames, **opts: float
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, status = tmp / f"{tag}.out", tmp / f"{tag}.status"
    argv = [sys.executable, str(WORKER), "--stream", names.video_stream,
            "--subject", names.video("c", "cam"), "--durable", "rec", "--out", str(out),
            "--status", str(status)]
    for k, v in opts.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=open(tmp / f"{tag}.log", "wb"),
                            stderr=subprocess.STDOUT)
    return proc, out, status


def _read_ints(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


async def _publish(nc: NATS, names: BusNames, count: int) -> None:
    js = jetstream(nc)
    for i in range(count):
        await js.publish(names.video("c", "cam"), str(i).encode(), headers={"Nats-Msg-Id": f"m{i}"})


async def test_sigterm_with_50_in_flight_exits_cleanly_and_loses_nothing(
    probe_nc: NATS, streams: BusNames, settings_for: Callable[..., CommonSettings], tmp_path: Path
) -> None:
    await _publish(probe_nc, streams, 100)
    env = settings_env(settings_for(PROBE_USER))
    first, out1, status1 = _spawn_worker(env, tmp_path, "first", streams, slow_s=60, grace_s=1)
    # Odd messages take 0.1 s, even ones 60 s: the worker ends up holding the 50 even ones, its
    # capacity, unacknowledged.
    await eventually(lambda: status1.exists() and status1.read_text() == "50", timeout_s=20,
                     message="worker never held its even messages in flight")
    t0 = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 10, "shutdown exceeded grace + drain"
    done_first = _read_ints(out1)
    assert done_first, "the first worker processed nothing"
    assert all(n % 2 == 1 for n in done_first), "a slow message was acked without being processed"

    second, out2, _ = _spawn_worker(env, tmp_path, "second", streams, slow_s=0)
    try:
        await eventually(lambda: len(_read_ints(out1)) + len(_read_ints(out2)) >= 100,
                         timeout_s=30, message="not every message was processed")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    done = _read_ints(out1) + _read_ints(out2)
    assert sorted(done) == list(range(100)), "each message processed exactly once"
    info = await jetstream(probe_nc).consumer_info(streams.video_stream, "rec")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_durable_consumer_redelivers_after_sigkill(
    probe_nc: NATS, streams: BusNames, settings_for: Callable[..., CommonSettings], tmp_path: Path
) -> None:
    await _publish(probe_nc, streams, 10)
    env = settings_env(settings_for(PROBE_USER))
    first, out1, status1 = _spawn_worker(env, tmp_path, "killed", streams, slow_s=60, ack_wait_s=4)
    await eventually(lambda: status1.exists() and status1.read_text() == "5", timeout_s=20,
                     message="worker never held its messages")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=5)
    info = await jetstream(probe_nc).consumer_info(streams.video_stream, "rec")
    assert info.num_ack_pending == 5, "the killed worker's messages stay unacknowledged"
    # The same durable, in a new process: the server redelivers after ack_wait.
    second, out2, _ = _spawn_worker(env, tmp_path, "after-kill", streams, slow_s=0, ack_wait_s=4)
    try:
        await eventually(lambda: len(_read_ints(out2)) >= 5, timeout_s=20,
                         message="unacked messages were not redelivered")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    assert sorted(_read_ints(out1)) == [1, 3, 5, 7, 9]
    assert sorted(_read_ints(out2)) == [0, 2, 4, 6, 8]


async def test_durable_consumer_survives_a_nats_server_restart(tmp_path: Path) -> None:
    server = servers.start_nats(tmp_path / "nats", extra_users=PROBE)
    try:
        names = BusNames(unique("t"))
        common = CommonSettings(
            local_mode=True, nats_url=server.url, nats_user=PROBE_USER,
            nats_password=server.passwords[PROBE_USER], bus_root=names.root,
            postgres_dsn="postgresql://x@127.0.0.1/x", s3_endpoint="127.0.0.1:1",
            s3_access_key="unused", s3_secret_key="unused",
        )
        nc = await connect_nats(common, name="test-restart")
        js = jetstream(nc)
        await ensure_streams(js, names, StreamLimits())
        await _publish(nc, names, 10)
        config = durable_config("rec", names.video("c", "cam"), ack_wait_s=2, max_ack_pending=100)
        sub = await js.pull_subscribe(names.video("c", "cam"), durable="rec",
                                      stream=names.video_stream, config=config)
        first = await sub.fetch(5, timeout=5)
        for msg in first[:3]:
            # Confirmed by the server: a plain ack is fire-and-forget, and one still in flight
            # when the server stops is (rightly, at-least-once) redelivered afterwards.
            await msg.ack_sync()
        server.restart()  # file storage: VIDEO and the durable consumer survive
        got: list[int] = []

        async def handle(msg: Msg) -> Outcome:
            got.append(int(msg.data))
            return Outcome.ACK

        stop = asyncio.Event()
        worker = PullWorker(js, stream=names.video_stream, config=config, handler=handle,
                            capacity=10)
        task = asyncio.create_task(worker.run(stop, grace_s=1))
        await eventually(lambda: len(got) >= 7, timeout_s=30,
                         message="the consumer did not resume after the restart")
        stop.set()
        await task
        # The 3 acknowledged before the restart are not redelivered; the other 7 are delivered.
        assert sorted(got) == [3, 4, 5, 6, 7, 8, 9]
        await nc.close()
    finally:
        server.process.stop()


async def test_an_owner_that_lost_its_camera_during_a_fetch_gives_the_frames_back_at_once(
    probe_nc: NATS, streams: BusNames,
) -> None:
    """owned_batches (issue 37: masking's and the recorder's loop, once): batches come while the
    process owns the camera; an owner frozen past its lease and woken up with frames in hand
    gives them back, and the next reader has them at once, in order — not after ack_wait."""
    from contextlib import aclosing

    from vigie.plumbing.bus.consumer import owned_batches

    await _publish(probe_nc, streams, 6)
    js = jetstream(probe_nc)
    config = durable_config("owned", streams.video("c", "cam"), ack_wait_s=30, max_ack_pending=100)
    sub = await js.pull_subscribe(streams.video("c", "cam"), durable="owned",
                                  stream=streams.video_stream, config=config)
    checks = {"made": 0, "lapses_after": 10**9}
    lost: list[int] = []

    async def still_owner() -> bool:
        checks["made"] += 1
        return checks["made"] <= checks["lapses_after"]

    got: list[bytes] = []
    stop = asyncio.Event()
    async with aclosing(owned_batches(sub, 2, stop=stop, still_owner=still_owner,
                                      on_lost=lambda msgs: lost.append(len(msgs)))) as batches:
        async for msgs in batches:
            for msg in msgs:
                got.append(msg.data)
                await msg.ack()
            if len(got) == 2:  # the lease lapses while the next fetch is under way
                checks["lapses_after"] = checks["made"] + 1
    assert got == [b"0", b"1"]
    assert lost == [2], "the batch fetched as the lease lapsed was given back, not worked on"
    again = await asyncio.wait_for(sub.fetch(4, timeout=2), timeout=3)  # no ack_wait to sit out
    assert [m.data for m in again] == [b"2", b"3", b"4", b"5"]
    await sub.unsubscribe()

    quiet = await js.pull_subscribe(streams.video("c", "none"), durable="quiet",
                                    stream=streams.video_stream)
    stop = asyncio.Event()
    async with aclosing(owned_batches(quiet, 2, stop=stop, still_owner=still_owner_true)) as b:
        assert await anext(b) == []  # a quiet camera: an empty batch after a second
        stop.set()
        with pytest.raises(StopAsyncIteration):
            await anext(b)


async def still_owner_true() -> bool:
    return True
