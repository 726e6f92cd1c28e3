"""A layout of live panes in Chromium against a running `make run` (issue 18): decoded frames per
second in each pane, pictures dropped, and what it costs the gateway and the browser; side by side,
the ffmpeg CLI decoding the same cameras' own RTSP streams (the decode a viewer cannot avoid).

    .venv/bin/vigie run &                       # the demo, with its simulated cameras
    .venv/bin/python -m bench.layout [--data var] [--size 2] [--seconds 20]

The benchmark adds a named account of its own (`bench.layout`, journaled like any other) with the
role of whoever holds the commune now, so that it sees what an agent on duty sees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import asyncpg
from playwright.async_api import async_playwright
from vigie.local.status import read_run_state
from vigie.security.accounts import create_user

from bench.common import median

USER = "bench.layout"
CHROMIUM = os.environ.get("VIGIE_CHROMIUM", "/usr/bin/chromium")
TICKS = os.sysconf("SC_CLK_TCK")

QUALITY_JS = """() => [...document.querySelectorAll('.case .lecteur')].map(e => {
  const v = e.querySelector('video'), q = v.getVideoPlaybackQuality();
  return { camera: e.dataset.camera, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
           width: v.videoWidth, height: v.videoHeight, avis: e.dataset.avis };
})"""


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (from /proc, children not included)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def chromium_pids() -> list[int]:
    """The browser Playwright started and its renderer, GPU and utility processes."""
    out = subprocess.run(["pgrep", "-f", "playwright_chromiumdev_profile"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


async def bench_account(dsn: str) -> tuple[str, str, list[str]]:
    """(commune, password, active camera slugs) for the commune with the most active cameras."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT commune, array_agg(slug ORDER BY slug) AS slugs FROM cameras "
            "WHERE state = 'active' GROUP BY commune ORDER BY count(*) DESC LIMIT 1")
        holder = await conn.fetchval("SELECT holder FROM handover_state WHERE commune = $1",
                                     row["commune"])
        role = "national_police" if holder == "national_police" else "operator"
        password = secrets.token_urlsafe(18)
        await conn.execute("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users "
                           "WHERE username = $1)", USER)
        await conn.execute("DELETE FROM users WHERE username = $1", USER)
        await create_user(conn, username=USER, full_name="Banc d'essai des mosaïques",
                          password=password, roles=[role], communes=[row["commune"]],
                          designated_by="bench.layout", designation_expires=None,
                          agent_number=None)
        return row["commune"], password, list(row["slugs"])
    finally:
        await conn.close()


async def sources(dsn: str, commune: str, slugs: list[str]) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT c.slug, s.rtsp_url FROM cameras c JOIN camera_sources s "
                                "ON s.camera_id = c.id WHERE c.commune = $1", commune)
        urls = {r["slug"]: r["rtsp_url"] for r in rows}
        return [urls[s] for s in slugs]
    finally:
        await conn.close()


def ffmpeg_decode(urls: list[str], seconds: float) -> tuple[float, list[float]]:
    """The ffmpeg CLI decoding each stream for `seconds`: (CPU seconds, fps per stream)."""
    procs = [subprocess.Popen(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "fatal", "-stats_period", "1",
         "-progress", "pipe:1", "-rtsp_transport", "tcp", "-i", url, "-t", str(seconds),
         "-an", "-f", "null", "-"], stdout=subprocess.PIPE, text=True) for url in urls]
    frames = []
    before = os.times()
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 30)
        counts = [int(line.split("=")[1]) for line in out.splitlines() if line.startswith("frame=")]
        frames.append(counts[-1] / seconds if counts else 0.0)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system -
                                                          before.children_system)
    return cpu, frames


async def main(data: Path, size: int, seconds: float) -> None:
    state = read_run_state(data)
    password = (data / "postgres" / "pg-password").read_text().strip()
    dsn = f"postgresql://vigie:{password}@127.0.0.1:{state['ports']['postgres']}/vigie"
    web = state["web"].rstrip("/")
    gateway = [state["services"]["viewer-gateway"]["pid"]]
    commune, agent_password, slugs = await bench_account(dsn)
    panes = [slugs[i % len(slugs)] for i in range(size * size)]

    idle0, t0 = cpu_s(gateway), time.monotonic()
    await asyncio.sleep(seconds / 2)
    idle = (cpu_s(gateway) - idle0) / (time.monotonic() - t0)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        await page.goto(web)
        await page.get_by_label("Identifiant").fill(USER)
        await page.get_by_label("Mot de passe").fill(agent_password)
        await page.get_by_label("Poste").fill("banc")
        await page.get_by_role("button", name="Se connecter").click()
        await page.locator("body:not([data-ecran='connexion'])").wait_for()
        kept = await page.evaluate(
            "async ([commune, view]) => { sessionStorage.setItem('vigie.commune', commune); "
            "const r = await fetch(`/api/views/${commune}`, { method: 'PUT', body: view, "
            "headers: { 'Content-Type': 'application/json' } }); return r.status; }",
            [commune, json.dumps({"size": size, "cameras": panes})])
        assert kept == 200, f"the layout was not kept ({kept})"
        await page.goto(f"{web}/ui/#/direct")
        await page.reload()
        await page.wait_for_function(
            "n => [...document.querySelectorAll('.case video')].filter(v => v.currentTime > 1)"
            ".length === n", arg=size * size, timeout=30_000)
        first = await page.evaluate(QUALITY_JS)
        gw0, br0, t0 = cpu_s(gateway), cpu_s(chromium_pids()), time.monotonic()
        await asyncio.sleep(seconds)
        last = await page.evaluate(QUALITY_JS)
        elapsed = time.monotonic() - t0
        gw = (cpu_s(gateway) - gw0) / elapsed
        br = (cpu_s(chromium_pids()) - br0) / elapsed
        await browser.close()

    fps = [(b["frames"] - a["frames"]) / elapsed for a, b in zip(first, last, strict=True)]
    dropped = [b["dropped"] - a["dropped"] for a, b in zip(first, last, strict=True)]
    ff_cpu, ff_fps = ffmpeg_decode(await sources(dsn, commune, panes), seconds)

    print(f"layout {size}x{size} in Chromium, {commune}, {elapsed:.0f} s")
    for pane, f, d in zip(last, fps, dropped, strict=True):
        print(f"  pane {pane['camera']:<20} {pane['width']}x{pane['height']}  "
              f"{f:5.1f} fps decoded  {d} dropped")
    print(f"decoded fps per pane: median {median(fps):.1f}, min {min(fps):.1f}")
    print(f"gateway CPU: {100 * gw:.1f} % of a core with {size * size} panes "
          f"(idle {100 * idle:.1f} %), {100 * (gw - idle) / (size * size):.1f} % per pane")
    print(f"chromium CPU (all its processes): {100 * br:.1f} % of a core, "
          f"{100 * br / (size * size):.1f} % per pane")
    print(f"baseline ffmpeg CLI decoding the same {size * size} RTSP sources: "
          f"{100 * ff_cpu / seconds:.1f} % of a core, "
          f"{', '.join(f'{f:.1f}' for f in ff_fps)} fps")
    print(f"ratio chromium / ffmpeg CPU: {br / max(1e-9, ff_cpu / seconds):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("var"))
    parser.add_argument("--size", type=int, default=2, choices=[1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.data, args.size, args.seconds))
