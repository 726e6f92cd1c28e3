"""The web UI in Debian's chromium, driven by Playwright, against the gateway over the real servers:
RTSP cameras (a masked marker, an unmasked marker, a real clip, one that can be stopped) → ingest →
masking → VIDEO → the gateway serving the UI. Screenshots land in test-artifacts/ui/ (docs/ui/
under `make screenshots`)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright
from playwright.async_api import Error as PlaywrightError
from vigie.local import servers

from tests.harness import REPO, demo_footage
from tests.masking.conftest import (  # noqa: F401 - fixtures
    COVER,
    MaskingHarness,
    marker_cameras,
    masking_harness,
)
from tests.viewer_gateway.conftest import (  # noqa: F401 - fixtures
    PASSWORD,
    GatewayUnderTest,
    as_retention,
    gateway,
    retention_service,
    verbalisation_service,
)

CHROMIUM = os.environ.get("VIGIE_CHROMIUM", "/usr/bin/chromium")
# Every run takes the screenshots (a screen that cannot be drawn fails its test); only
# `make screenshots` writes them over the ones docs/ui.md shows.
SCREENSHOTS = Path(os.environ.get("VIGIE_SCREENSHOTS", str(REPO / "test-artifacts" / "ui")))
CLIP_NAME = "shopfront-door-cctv-timestamp-640x360.mp4"


def _start_clip_camera(work_dir: Path, port: int | None = None) -> servers.RtspCameras:
    return servers.start_rtsp_cameras(work_dir / "rtsp-ui-clip", name="rtsp-ui-clip", port=port,
                                      clips=[servers.ClipMount("rue", demo_footage() / CLIP_NAME,
                                                               "h264")])


@pytest.fixture(scope="session")
def clip_camera_server(work_dir: Path) -> Iterator[servers.RtspCameras]:
    """GStreamer's RTSP server aborts now and then when a client leaves (CI:
    "gst_rtsp_media_get_rates: assertion failed", in the middle of a UI test): a camera that
    reboots. The UI tests are not about that, so a watchdog starts it again on its port at once
    (ingest reconnects by itself), and says so in the server's log."""
    server = _start_clip_camera(work_dir)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            proc = server.process.proc
            if proc is not None and proc.poll() is not None:
                with server.process.log_path.open("a") as log:
                    log.write(f"(the test harness restarts it: it exited with {proc.returncode})\n")
                try:
                    server.process.start()
                except OSError:
                    continue

    watchdog = threading.Thread(target=watch, name="clip-camera-watchdog", daemon=True)
    watchdog.start()
    yield server
    done.set()
    watchdog.join(5)
    server.process.stop()


@pytest.fixture
def clip_camera(clip_camera_server: servers.RtspCameras,
                work_dir: Path) -> servers.RtspCameras:
    """The looping clip's GStreamer server, answering at the start of each test (its watchdog
    restarts it when it dies). Should its port not answer within 10 s, it is started afresh on
    another port: another test's camera (another worker) may have taken the old one."""
    deadline = time.monotonic() + 10
    while not servers.tcp_answers(clip_camera_server.port):
        if time.monotonic() > deadline:
            tail = clip_camera_server.process.log_path.read_text(errors="replace")[-1500:]
            print(f"the clip camera server did not answer; started afresh on another port. "
                  f"Its log ends with:\n{tail}")
            clip_camera_server.process.stop()
            fresh = _start_clip_camera(work_dir)
            clip_camera_server.process, clip_camera_server.port = fresh.process, fresh.port
            break
        time.sleep(0.1)
    return clip_camera_server


@pytest.fixture
def stoppable_camera(work_dir: Path) -> Iterator[servers.RtspCameras]:
    """A camera of its own process, for the test that unplugs it."""
    server = servers.start_rtsp_cameras(work_dir / "rtsp-ui-stop", name="rtsp-ui-stop",
                                        patterns=[servers.PatternMount("p1", 320, 240, 25)])
    yield server
    server.process.stop()


@dataclass
class UiStack:
    gateway: GatewayUnderTest
    masking: MaskingHarness
    browser: Browser
    contexts: list[BrowserContext]

    async def page(self) -> Page:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 900},
                                                 locale="fr-FR", timezone_id="Europe/Paris")
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: print(f"page error: {exc}"))
        page.on("console", lambda m: print(f"console {m.type}: {m.text}") if m.type == "error"
                else None)
        return page

    async def login(self, username: str, *, screen: str | None = None) -> Page:
        page = await self.page()
        await page.goto(self.gateway.url)
        await page.get_by_label("Identifiant").fill(username)
        await page.get_by_label("Mot de passe").fill(PASSWORD)
        await page.get_by_role("button", name="Se connecter").click()
        if username in self.gateway.totp:
            code = page.get_by_label("Code de l'application d'authentification")
            await code.wait_for()
            await code.fill(await self.gateway.totp_code(username))
            await page.get_by_role("button", name="Se connecter").click()
        await page.locator("body:not([data-ecran='connexion'])").wait_for()
        if screen:
            await page.goto(f"{self.gateway.url}/ui/#/{screen}")
            await page.locator(f"body[data-ecran='{screen.split('/')[0]}']").wait_for()
        return page


async def shoot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--autoplay-policy=no-user-gesture-required"])
        yield launched
        await launched.close()


@pytest_asyncio.fixture
async def ui(
    gateway: GatewayUnderTest, masking_harness: MaskingHarness,  # noqa: F811
    marker_cameras: servers.RtspCameras, clip_camera: servers.RtspCameras,  # noqa: F811
    browser: Browser,
) -> AsyncIterator[UiStack]:
    """Palaiseau: gare (no source: hors ligne), chantier (commissioning), ancienne (disabled) from
    the gateway's seed; m1 (marker under a mask), m2 (marker, approved without masks), rue (clip)."""
    await masking_harness.add_camera("m1", marker_cameras.url("m1"),
                                     masks=[{"label": "fenêtre", "mode": "fill", "points": COVER}])
    await masking_harness.add_camera("m2", marker_cameras.url("m2"), masks=[])
    await masking_harness.add_camera("rue", clip_camera.url("rue"), masks=[])
    stack = UiStack(gateway, masking_harness, browser, [])
    yield stack
    for context in stack.contexts:
        await context.close()


LATE_S = 1.5


async def answer_late(route: Route) -> None:
    """A slow network or a busy gateway, for one kind of request."""
    await asyncio.sleep(LATE_S)
    try:
        await route.continue_()
    except PlaywrightError:  # the page aborted it meanwhile (a newer request superseded it)
        pass
