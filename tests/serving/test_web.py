"""The web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright; skipped when absent)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_server(tiny_bundle: Path) -> Iterator[str]:
    import socket

    import uvicorn

    from fusionrec.serving import ServingSettings, create_app

    app = create_app(
        ServingSettings(bundle_path=tiny_bundle, store_url=f"sqlite:///{tiny_bundle}.db", sync_interval_s=0)
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_page_shows_history_recommendations_and_explanation(live_server: str) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium absent: apt-get install -y chromium (scripts/ci_services.sh does it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(live_server + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            page.fill("#user", "u1")
            page.click("#go")
            page.wait_for_selector("#recs li", timeout=15_000)
            assert page.locator("#recs li").count() == 10
            assert page.locator("#history li").count() > 0
            assert "Movie" in page.locator("#recs li .title").first.inner_text()
            page.locator("#recs li").first.click()
            page.wait_for_selector("#because li", timeout=15_000)
            assert "similarity" in page.locator("#because li").first.inner_text()
            why = page.locator("#why-sentence").inner_text()  # the explanation in words, never factor numbers
            assert why.startswith("Recommended ") and "because you liked" in why
            assert "factor" not in page.locator("#explain").inner_text().lower()
            page.fill("#user", "nobody-here")
            page.click("#go")
            page.wait_for_selector("#status.error", timeout=15_000)
            assert "unknown user" in page.locator("#status").inner_text()
            assert errors == []
        finally:
            browser.close()


def test_phone_layout_and_no_stale_explanation(live_server: str) -> None:
    """At 390 px the button is not clipped and the recommendations come before the history; an error clears the
    previous user's explanation (issue 11)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium absent: apt-get install -y chromium (scripts/ci_services.sh does it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 900})
            page.goto(live_server + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            button = page.locator("#go").bounding_box()
            assert button is not None and button["x"] >= 0 and button["x"] + button["width"] <= 390
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
            page.fill("#user", "u1")
            page.click("#go")
            page.wait_for_selector("#recs li", timeout=15_000)
            recs, hist = page.locator("#recs").bounding_box(), page.locator("#history").bounding_box()
            assert recs is not None and hist is not None and recs["y"] < hist["y"]
            page.locator("#recs li").first.click()
            page.wait_for_selector("#because li", timeout=15_000)
            page.fill("#user", "nobody-here")
            page.click("#go")
            page.wait_for_selector("#status.error", timeout=15_000)
            assert page.locator("#because").count() == 0
            assert "Click a recommendation" in page.locator("#explain").inner_text()
            page.set_viewport_size({"width": 1280, "height": 800})  # wide: history, recommendations, why
            recs, hist = page.locator("#recs").bounding_box(), page.locator("#history").bounding_box()
            assert recs is not None and hist is not None and hist["x"] < recs["x"]
        finally:
            browser.close()
