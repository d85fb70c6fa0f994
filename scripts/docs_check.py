"""Check the built documentation site (``site/``): offline, and usable in a real browser.

``python scripts/docs_check.py static site``
    Every page loads nothing from another host: no ``<script src>``, stylesheet, font or preload from ``http(s)://``
    or ``//``, no ``@import`` / ``url()`` of a remote resource in the CSS; the search index, a page per registered
    model and every tutorial (with an embedded plot) are there.
``python scripts/docs_check.py browser site --chromium /usr/bin/chromium --out site-check``
    Serves the site on 127.0.0.1 and drives headless Chromium (Playwright, never ``playwright install``) at desktop
    (1280x800) and phone (390x844) widths: the navigation reaches the user guide (the phone through its menu
    drawer), search finds a model, a model page shows its parameter table, a tutorial shows its executed plot,
    no page scrolls sideways on the phone, and no request leaves 127.0.0.1. Screenshots go to ``--out``.

Exit status 1 with one line per failure.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

REMOTE = re.compile(r"""^(?:https?:)?//""", re.I)
TAG = re.compile(r"<(script|link|img|iframe|source|video|audio)\b[^>]*>", re.I | re.S)
ATTR = re.compile(r"""\b(src|href)\s*=\s*["']([^"']*)["']""", re.I)
REL = re.compile(r"""\brel\s*=\s*["']([^"']*)["']""", re.I)
CSS_REMOTE = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*["']?((?:https?:)?//[^"')\s]+)""", re.I)


# ------------------------------------------------------------------------------------------------------- static
def remote_resources(html: str) -> list[str]:
    """The remote resources a page would load: scripts, stylesheets, fonts, preloads, images, frames, media.

    Plain ``<a href>`` links to other sites are not resources and are allowed.
    """
    found = []
    for tag in TAG.finditer(html):
        name = tag.group(1).lower()
        for attr, value in ATTR.findall(tag.group(0)):
            if not REMOTE.match(value.strip()):
                continue
            if name == "link":
                rel = (REL.search(tag.group(0)) or [None, ""])[1].lower()
                if not ({"stylesheet", "preload", "prefetch", "modulepreload", "icon", "manifest"} & set(rel.split())):
                    continue  # e.g. rel="canonical": not loaded
            found.append(f"<{name} {attr}={value}>")
    found += [f"css {u}" for u in CSS_REMOTE.findall(html)]
    return found


def _pages(site: Path) -> Iterator[Path]:
    yield from sorted(site.rglob("*.html"))


def check_static(site: Path) -> list[str]:
    failures = []
    if not (site / "index.html").is_file():
        return [f"{site}/index.html is missing: build the site first (bash scripts/docs.sh)"]
    for page in _pages(site):
        for res in remote_resources(page.read_text(encoding="utf-8", errors="replace")):
            failures.append(f"{page.relative_to(site)} loads a remote resource: {res}")
    for css in sorted(site.rglob("*.css")):
        for url in CSS_REMOTE.findall(css.read_text(encoding="utf-8", errors="replace")):
            failures.append(f"{css.relative_to(site)} loads a remote resource: {url}")
    if not (site / "search" / "search_index.json").is_file():
        failures.append("search/search_index.json is missing: the search plugin did not run")
    try:
        from fusionrec.models import available_models
    except ImportError:  # pragma: no cover - checked from a docs environment
        failures.append("fusionrec is not importable: cannot check the model pages")
    else:
        for name in available_models():
            if not (site / "models" / f"{name}.html").is_file():
                failures.append(f"models/{name}.html is missing (every registered model has a page)")
    tutorials = sorted((site / "tutorials").glob("*.html"))
    if len(tutorials) < 5:
        failures.append(f"expected the five tutorials in tutorials/, found {[t.name for t in tutorials]}")
    plots = [t.name for t in tutorials if "data:image/png;base64" in t.read_text(encoding="utf-8", errors="replace")]
    if len(plots) < 3:
        failures.append(f"expected executed plots in at least three tutorials, found them in {plots}")
    return failures


# ------------------------------------------------------------------------------------------------------ browser
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def check_browser(site: Path, chromium: str, out: Path, model: str = "ALS", tutorial: str = "quickstart") -> list[str]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    server, base = _serve(site)
    failures: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for label, viewport in VIEWPORTS.items():
                failures += _check_viewport(browser, base, label, viewport, out, model, tutorial)
            browser.close()
    finally:
        server.shutdown()
    return failures


def _check_viewport(
    browser: object, base: str, label: str, viewport: dict[str, int], out: Path, model: str, tutorial: str
) -> list[str]:
    failures: list[str] = []
    context = browser.new_context(viewport=viewport, device_scale_factor=1)  # type: ignore[attr-defined]
    external: list[str] = []
    errors: list[str] = []

    def route(r: object) -> None:
        url = r.request.url  # type: ignore[attr-defined]
        if url.startswith(base) or url.startswith("data:") or url.startswith("blob:"):
            r.continue_()  # type: ignore[attr-defined]
        else:
            external.append(url)
            r.abort()  # type: ignore[attr-defined]

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def fail(msg: str) -> None:
        failures.append(f"[{label}] {msg}")

    def sideways(name: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"] + 1:
            fail(f"{name} scrolls sideways: {width}px wide at a {viewport['width']}px viewport")

    # home and navigation
    page.goto(f"{base}/index.html")
    page.screenshot(path=str(out / f"{label}-home.png"))
    sideways("index.html")
    nav = page.locator("nav.md-nav--primary a.md-nav__link[href$='guide/data.html']").first
    if label == "phone":  # the menu drawer, then its "User guide" section
        page.click("label.md-header__button[for='__drawer']")
        page.wait_for_timeout(400)
        page.screenshot(path=str(out / f"{label}-menu.png"))
        page.locator("nav.md-nav--primary label.md-nav__link", has_text="User guide").first.click()
        page.wait_for_timeout(400)
        page.screenshot(path=str(out / f"{label}-menu-guide.png"))
    if not nav.is_visible():
        fail("the navigation does not show the user guide")
    else:
        nav.click(timeout=10000)
        page.wait_for_load_state()
        if not page.url.endswith("guide/data.html"):
            fail(f"clicking the user guide opened {page.url}")

    # search (served, not file://)
    page.goto(f"{base}/index.html")
    if label == "phone":
        page.click("label.md-header__button[for='__search']")
    box = page.locator("input.md-search__input")
    box.fill(model)
    try:
        page.wait_for_selector(f".md-search-result__item a[href*='models/{model}.html']", timeout=15000)
    except Exception:
        fail(f"searching '{model}' found no link to its model page")
    page.screenshot(path=str(out / f"{label}-search.png"))

    # a model page: its generated parameter table
    page.goto(f"{base}/models/{model}.html")
    page.wait_for_load_state()
    page.screenshot(path=str(out / f"{label}-model-{model}.png"), full_page=False)
    if page.locator("h2#parameters").count() != 1 or page.locator("table code", has_text="n_factors").count() < 1:
        fail(f"models/{model}.html shows no parameter table with n_factors")
    sideways(f"models/{model}.html")

    # a tutorial with its executed plot
    page.goto(f"{base}/tutorials/{tutorial}.html")
    page.wait_for_load_state()
    img = page.locator("img[src^='data:image/png']").first
    if img.count() == 0:
        fail(f"tutorials/{tutorial}.html shows no plot")
    else:
        img.scroll_into_view_if_needed()
        width = img.evaluate("el => el.naturalWidth")
        if not width:
            fail(f"the plot of tutorials/{tutorial}.html does not render")
        page.screenshot(path=str(out / f"{label}-tutorial-{tutorial}.png"))
    sideways(f"tutorials/{tutorial}.html")

    if external:
        fail(f"pages requested other hosts: {sorted(set(external))[:5]}")
    if errors:
        fail(f"script errors: {errors[:3]}")
    context.close()
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["static", "browser"])
    parser.add_argument("site", type=Path, nargs="?", default=Path("site"))
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable (browser mode)")
    parser.add_argument("--out", type=Path, default=Path("site-check"), help="screenshots (browser mode)")
    args = parser.parse_args(argv)
    if args.mode == "static":
        failures = check_static(args.site)
    else:
        failures = check_browser(args.site, args.chromium, args.out)
    for line in failures:
        print(f"docs_check: {line}", file=sys.stderr)
    if not failures:
        where = f"; screenshots in {args.out}" if args.mode == "browser" else ""
        print(f"docs_check: {args.mode} checks of {args.site} passed{where}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
