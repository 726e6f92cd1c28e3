"""NATS seen by Prometheus: the nats-server's monitoring endpoints turned into metrics.

nats-server serves JSON (`/varz`, `/jsz`, `/healthz` on its monitoring port), not Prometheus text,
and its exporter (prometheus-nats-exporter) is in neither Debian nor PyPI. This collector reads
those endpoints at each scrape — nothing is cached, a scrape shows the servers as they are — and
exposes what the alert rules need: whether each server answers and is healthy, JetStream's store
against its limit, each stream's bytes against its ceiling, each consumer's backlog, the slow
consumers. One exporter can watch several servers (label `server`, their `server_name`).

The monitoring port answers anyone who reaches it, so it stays private (loopback in Compose, a
NetworkPolicy in Kubernetes): the exporter runs beside the server, and only this port is scraped.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

PREFIX = "vigie_nats"


@dataclass(frozen=True)
class ServerReading:
    """What one server's monitoring port answered; `None` where it did not."""

    url: str
    varz: dict[str, Any] | None
    jsz: dict[str, Any] | None
    healthy: bool


def _get_json(url: str, timeout_s: float) -> tuple[int, dict[str, Any] | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 (http URL given by the operator)
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # /healthz answers 503 with a JSON body
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


def read_server(url: str, timeout_s: float = 3.0) -> ServerReading:
    base = url.rstrip("/")
    _, varz = _get_json(f"{base}/varz", timeout_s)
    if varz is None:
        return ServerReading(url, None, None, healthy=False)
    _, jsz = _get_json(f"{base}/jsz?accounts=true&streams=true&consumers=true&config=true",
                       timeout_s)
    status, _ = _get_json(f"{base}/healthz", timeout_s)
    return ServerReading(url, varz, jsz, healthy=status == 200)


class NatsCollector:
    """A prometheus_client collector: each `collect()` reads every server once."""

    def __init__(self, monitor_urls: Sequence[str], timeout_s: float = 3.0) -> None:
        if not monitor_urls:
            raise ValueError("give at least one nats-server monitoring URL (http://host:8222)")
        self.monitor_urls = list(monitor_urls)
        self.timeout_s = timeout_s

    def collect(self) -> Iterator[Metric]:
        readings = [read_server(url, self.timeout_s) for url in self.monitor_urls]
        yield from metrics_of(readings)


def metrics_of(readings: Sequence[ServerReading]) -> Iterator[Metric]:
    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["server", *labels])

    def counter(name: str, doc: str) -> CounterMetricFamily:
        return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["server"])

    up = GaugeMetricFamily(f"{PREFIX}_up", "1 when the server's monitoring port answered",
                           labels=["monitor"])
    healthy = gauge("healthy", "1 when the server's /healthz says it (and JetStream) is well")
    connections = gauge("connections", "Client connections open")
    routes = gauge("routes", "Routes open to the other servers of the cluster")
    memory = gauge("memory_bytes", "Resident memory of the server")
    slow = counter("slow_consumers", "Clients the server cut off or skipped because they did not "
                   "read fast enough")
    in_bytes = counter("in_bytes", "Bytes received from clients and routes")
    out_bytes = counter("out_bytes", "Bytes sent to clients and routes")
    in_msgs = counter("in_msgs", "Messages received")
    out_msgs = counter("out_msgs", "Messages sent")
    js_storage = gauge("jetstream_storage_bytes", "JetStream file store used on this server")
    js_max_storage = gauge("jetstream_max_storage_bytes", "JetStream file store limit")
    js_memory = gauge("jetstream_memory_bytes", "JetStream memory store used on this server")
    js_max_memory = gauge("jetstream_max_memory_bytes", "JetStream memory store limit")
    api_errors = counter("jetstream_api_errors", "JetStream API requests answered with an error")
    stream_bytes = gauge("stream_bytes", "Bytes a stream holds on this server", ["stream"])
    stream_messages = gauge("stream_messages", "Messages a stream holds", ["stream"])
    stream_max_bytes = gauge("stream_max_bytes", "A stream's byte ceiling (0: none)", ["stream"])
    stream_leader = gauge("stream_leader", "1 on the server that leads the stream", ["stream"])
    pending = gauge("consumer_pending", "Messages not yet delivered to a consumer",
                    ["stream", "consumer"])
    ack_pending = gauge("consumer_ack_pending", "Messages delivered and not yet acknowledged",
                        ["stream", "consumer"])
    redelivered = gauge("consumer_redelivered", "Messages delivered more than once and not yet "
                        "acknowledged", ["stream", "consumer"])

    for reading in readings:
        up.add_metric([reading.url], 1.0 if reading.varz is not None else 0.0)
        if reading.varz is None:
            continue
        varz, server = reading.varz, str(reading.varz.get("server_name", reading.url))
        healthy.add_metric([server], 1.0 if reading.healthy else 0.0)
        connections.add_metric([server], float(varz.get("connections", 0)))
        routes.add_metric([server], float(varz.get("routes", 0)))
        memory.add_metric([server], float(varz.get("mem", 0)))
        slow.add_metric([server], float(varz.get("slow_consumers", 0)))
        in_bytes.add_metric([server], float(varz.get("in_bytes", 0)))
        out_bytes.add_metric([server], float(varz.get("out_bytes", 0)))
        in_msgs.add_metric([server], float(varz.get("in_msgs", 0)))
        out_msgs.add_metric([server], float(varz.get("out_msgs", 0)))
        jetstream = varz.get("jetstream") or {}
        config, stats = jetstream.get("config") or {}, jetstream.get("stats") or {}
        if config:
            js_storage.add_metric([server], float(stats.get("storage", 0)))
            js_max_storage.add_metric([server], float(config.get("max_storage", 0)))
            js_memory.add_metric([server], float(stats.get("memory", 0)))
            js_max_memory.add_metric([server], float(config.get("max_memory", 0)))
            api_errors.add_metric([server], float((stats.get("api") or {}).get("errors", 0)))
        for account in (reading.jsz or {}).get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                name = str(stream.get("name", ""))
                state, stream_config = stream.get("state") or {}, stream.get("config") or {}
                stream_bytes.add_metric([server, name], float(state.get("bytes", 0)))
                stream_messages.add_metric([server, name], float(state.get("messages", 0)))
                stream_max_bytes.add_metric([server, name],
                                            float(max(0, stream_config.get("max_bytes", 0))))
                cluster = stream.get("cluster") or {}
                leads = cluster.get("leader") in (None, server) if cluster else True
                stream_leader.add_metric([server, name], 1.0 if leads else 0.0)
                for consumer in stream.get("consumer_detail") or []:
                    labels = [server, name, str(consumer.get("name", ""))]
                    pending.add_metric(labels, float(consumer.get("num_pending", 0)))
                    ack_pending.add_metric(labels, float(consumer.get("num_ack_pending", 0)))
                    redelivered.add_metric(labels, float(consumer.get("num_redelivered", 0)))

    yield from (up, healthy, connections, routes, memory, slow, in_bytes, out_bytes, in_msgs,
                out_msgs, js_storage, js_max_storage, js_memory, js_max_memory, api_errors,
                stream_bytes, stream_messages, stream_max_bytes, stream_leader, pending,
                ack_pending, redelivered)


def serve(monitor_urls: Sequence[str], host: str, port: int,
          give_up_after_s: float | None = None) -> int:
    """Serve /metrics until SIGTERM or SIGINT (the orchestrator's stop): 0.

    ``give_up_after_s``: exit 1 once no server has answered for that long. Compose runs the
    exporter in the nats container's network namespace (its monitoring port stays on loopback);
    when that container restarts, the namespace the exporter holds is an empty one, and only a
    restart of the exporter joins the new one."""
    registry = CollectorRegistry()
    registry.register(NatsCollector(monitor_urls))
    server, thread = start_http_server(port, addr=host, registry=registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    gave_up = False
    if give_up_after_s is None:
        stop.wait()
    else:
        last_answer = time.monotonic()
        while not stop.wait(min(5.0, give_up_after_s / 3)):
            if any(_get_json(f"{u.rstrip('/')}/varz", 3.0)[1] is not None for u in monitor_urls):
                last_answer = time.monotonic()
            elif time.monotonic() - last_answer > give_up_after_s:
                gave_up = True
                break
    server.shutdown()
    thread.join(timeout=5)
    if gave_up:
        print(f"vigie nats-exporter: no nats-server answered for {give_up_after_s:.0f} s; "
              "exiting so that the orchestrator starts it again", file=sys.stderr, flush=True)
    return 1 if gave_up else 0
