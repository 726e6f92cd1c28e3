"""A real Prometheus against a running Vigie (issue 36): `make prometheus-check`.

It starts `vigie run --replicas 2` and Debian's Prometheus with deploy/prometheus/alerts.yml, its
`for:` durations divided by FOR_SCALE (so that a run takes minutes, not hours: the rules and their
expressions are otherwise the ones deployed), scraping every service replica, the NATS and
PostgreSQL exporters and SeaweedFS as the deployments do. Then, reading Prometheus's own
/api/v1/alerts:

1. a running deployment raises no alert;
2. replicas hand cameras over — ingest stopped cleanly, masking killed (-9), recorder stopped,
   each started again by `vigie run` — and still no alert fires;
3. the object store frozen (SIGSTOP): VigieObjectStoreDown and VigieSegmentUploadFailing fire;
4. every recorder frozen: VigieServiceAbsent{service="recorder"} fires.

Prints one JSON summary; exits 1 if any step did not go as said.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from vigie.local.monitoring import prometheus_config

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FOR_SCALE = 10  # "for: 2m" becomes 12 s; a replica restarting takes 2–5 s, a real hand-over ≈ 10 s
INTERVAL_S = 2
# True of the demo, so expected: Ballainvilliers's made-up authorisation ends within 20 days
# (vigie.local.demo.AUTHORISATION_ENDS, to show the warning), and the rule says so.
DEMO_TRUTHS = [{"alertname": "VigieAuthorisationExpiring", "commune": "ballainvilliers"}]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_base() -> int:
    for _ in range(200):
        base = random.randrange(20000, 32600, 100)
        if all(_free(base + i) for i in range(1, 71)):
            return base
    raise SystemExit("no free port range")


def _get(url: str, timeout_s: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:
        return json.loads(answer.read())


def _until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except (OSError, ValueError, KeyError):
            found = None
        if found:
            return found
        time.sleep(1)
    raise TimeoutError(what)


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", duration))


def scaled_rules(source: Path, scale: float) -> dict[str, Any]:
    """alerts.yml with each rule's `for:` divided by `scale` (at least one evaluation)."""
    rules = yaml.safe_load(source.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{max(INTERVAL_S, round(_seconds(rule['for']) / scale))}s"
    return rules


class Check:
    def __init__(self, work: Path, footage: str | None) -> None:
        self.work = work
        self.data = work / "var"
        self.base = _port_base()
        self.web = self.base + 20
        self.prom_port = self.base + 69
        self.footage = footage
        self.procs: list[subprocess.Popen[bytes]] = []
        self.summary: dict[str, Any] = {"for_scale": FOR_SCALE}
        self.failures: list[str] = []

    # -- the two processes -----------------------------------------------------------------

    def start_vigie(self) -> None:
        argv = [sys.executable, "-m", "vigie.cli.main", "run", "--data", str(self.data),
                "--port-base", str(self.base), "--http-port", str(self.web), "--replicas", "2"]
        if self.footage:
            argv += ["--footage", self.footage]
        log = (self.work / "vigie-run.log").open("wb")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))
        t0 = time.monotonic()
        _until(self._cameras_recorded, 240, "vigie run: cameras not online and recorded")
        self.summary["vigie_run_ready_s"] = round(time.monotonic() - t0, 1)

    def _status(self) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "vigie.cli.main", "status", "--data",
                               str(self.data), "--json"], capture_output=True, text=True,
                              timeout=60)
        return dict(json.loads(done.stdout))

    def _cameras_recorded(self) -> bool:
        cameras = self._status().get("cameras") or []
        return bool(cameras) and all(c.get("online") and c.get("segments_last_5m", 0) > 0
                                     for c in cameras)

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.data / "run.json").read_text()))

    def start_prometheus(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit("prometheus missing: make setup installs Debian's prometheus")
        folder = self.work / "prometheus"
        folder.mkdir()
        (folder / "alerts.yml").write_text(yaml.safe_dump(
            scaled_rules(HERE / "alerts.yml", FOR_SCALE), sort_keys=False))
        (folder / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(
            self.state(), interval_s=INTERVAL_S, rule_files=["alerts.yml"])))
        log = (self.work / "prometheus.log").open("wb")
        self.procs.append(subprocess.Popen(
            [binary, f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _until(self._every_target_up, 90, "Prometheus: targets not all up")

    def _api(self, path: str) -> Any:
        return _get(f"http://127.0.0.1:{self.prom_port}/api/v1/{path}")["data"]

    def _every_target_up(self) -> bool:
        targets = self._api("targets")["activeTargets"]
        self.summary["targets"] = len(targets)
        return bool(targets) and all(t["health"] == "up" for t in targets)

    def firing(self) -> list[dict[str, str]]:
        return [{"alertname": a["labels"]["alertname"],
                 **{k: v for k, v in a["labels"].items()
                    if k in ("service", "replica", "job", "camera", "commune", "stream",
                             "server")}}
                for a in self._api("alerts")["alerts"] if a["state"] == "firing"]

    def unexpected(self) -> list[dict[str, str]]:
        return [a for a in self.firing() if a not in DEMO_TRUTHS]

    # -- the steps ---------------------------------------------------------------------------

    def quiet_while(self, seconds: float, step: str) -> None:
        """Every alert that fires during `seconds` is a failure of `step`."""
        seen: list[dict[str, str]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for alert in self.unexpected():
                if alert not in [{k: v for k, v in a.items() if k != "targets_down"}
                                 for a in seen]:
                    seen.append(alert)
                    # Why: the targets that were not up then (a scrape that timed out, say).
                    alert["targets_down"] = str([
                        (t["labels"].get("replica") or t["labels"].get("job"), t["lastError"])
                        for t in self._api("targets")["activeTargets"] if t["health"] != "up"])
            time.sleep(1)
        self.summary[f"{step}_alerts"] = seen
        if seen:
            self.failures.append(f"{step}: alerts fired {seen}")

    def fires(self, alertname: str, labels: dict[str, str], timeout_s: float, step: str) -> None:
        t0 = time.monotonic()
        try:
            _until(lambda: any(a["alertname"] == alertname and
                               all(a.get(k) == v for k, v in labels.items())
                               for a in self.firing()), timeout_s, alertname)
            self.summary[f"{step}_{alertname}_after_s"] = round(time.monotonic() - t0, 1)
        except TimeoutError:
            self.failures.append(f"{step}: {alertname}{labels or ''} did not fire in "
                                 f"{timeout_s:.0f} s (firing: {self.firing()})")

    def pid(self, child: str) -> int:
        state = self.state()
        if child in state["services"]:
            return int(state["services"][child]["pid"])
        return int(state["servers"][child])

    def hand_over(self) -> None:
        for child, sig in (("ingest-1", signal.SIGTERM), ("masking-2", signal.SIGKILL),
                           ("recorder-1", signal.SIGTERM)):
            os.kill(self.pid(child), sig)
            self.quiet_while(25, f"hand_over_{child}")
        restarts = {n: s["restarts"] for n, s in self.state()["services"].items()}
        self.summary["restarts"] = restarts

    def freeze(self, children: list[str], step: str,
               expected: list[tuple[str, dict[str, str], float]]) -> None:
        pids = [self.pid(c) for c in children]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            for alertname, labels, timeout_s in expected:
                self.fires(alertname, labels, timeout_s, step)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def run(self) -> int:
        t0 = time.monotonic()
        try:
            self.start_vigie()
            self.start_prometheus()
            # Until every target has been scraped once, an `absent(up == 1)` holds: what fired
            # then is noted, and must have resolved before the watch begins.
            self.summary["warm_up_alerts"] = self.unexpected()
            try:
                _until(lambda: not self.unexpected(), 60, "warm-up alerts resolved")
            except TimeoutError:
                self.failures.append(f"warm-up: alerts still firing {self.unexpected()}")
            # The rules have their data (ownership, sweep, authorisations): quiet for a minute.
            self.quiet_while(60, "running")
            self.hand_over()
            self.freeze(["s3"], "store_frozen", [
                ("VigieObjectStoreDown", {"job": "seaweedfs"}, 90),
                ("VigieSegmentUploadFailing", {}, 240)])
            self.freeze(["recorder-1", "recorder-2"], "recorders_frozen", [
                ("VigieServiceAbsent", {"service": "recorder"}, 90)])
            # What is true of the demo fires too (for: 1h scaled: 6 min after the start).
            for truth in DEMO_TRUTHS:
                self.fires(truth["alertname"], {k: v for k, v in truth.items()
                                                if k != "alertname"}, 400, "demo")
        except TimeoutError as exc:
            self.failures.append(f"did not start: {exc}")
        finally:
            self.stop()
        self.summary["total_s"] = round(time.monotonic() - t0)
        self.summary["failures"] = self.failures
        print("prometheus-check: " + json.dumps(self.summary), flush=True)
        return 1 if self.failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", help="clips for the simulated cameras (default: vigie run's)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vigie-prometheus-check-"))
    try:
        return Check(work, args.footage).run()
    finally:
        if args.keep:
            print(f"prometheus-check: logs in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
