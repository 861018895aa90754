"""Headless-Chromium checks of the rendered book, shared by the tests.

``serve(directory)`` serves a built HTML folder on 127.0.0.1 (a free port, in a thread);
``inspect_page(url)`` loads one page in Debian's Chromium through Playwright, waits for
MathJax to finish typesetting and reports what a reader would see: typeset formulas,
images that failed to load, requests that left the machine, console errors. Its parts,
``launch_chromium``, ``block_external`` and ``open_page``, serve checks that load many pages
in one browser session (``tests/page_shape.py``).

Playwright's own browser downloads are never used (no ``playwright install``): the
system Chromium is required (Debian/Ubuntu: ``apt-get install chromium``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

__all__ = [
    "BrowserMissing",
    "CHROMIUM_ARGS",
    "chromium_context",
    "PageReport",
    "block_external",
    "find_chromium",
    "inspect_page",
    "launch_chromium",
    "open_page",
    "serve",
]

#: Flags for a quiet, sandbox-free (we may run as root) headless Chromium that never
#: phones home on its own, so that every request it makes comes from the page.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
_LOCAL_SCHEMES = {"data", "blob", "about"}

#: Resolves when MathJax has typeset the page; also when the page has no MathJax at all.
_WAIT_FOR_MATHJAX = """
async () => {
  const started = Date.now();
  while (!(window.MathJax && window.MathJax.startup && window.MathJax.startup.promise)) {
    const script = document.querySelector('script[src*="mathjax"], script[src*="MathJax"]');
    if (!script || Date.now() - started > 20000) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await window.MathJax.startup.promise;
  return true;
}
"""

_MEASURE = """
() => {
  const images = Array.from(document.images).map((img) => ({
    src: img.currentSrc || img.src,
    ok: img.complete && img.naturalWidth > 0,
  }));
  const raw = Array.from(document.querySelectorAll('.math'))
    .filter((el) => !el.querySelector('mjx-container'))
    .map((el) => el.textContent.trim().slice(0, 80));
  return {
    math: document.querySelectorAll('mjx-container').length,
    display_math: document.querySelectorAll('mjx-container[display="true"]').length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    untypeset: raw,
    images: images,
    title: document.title,
  };
}
"""


class BrowserMissing(RuntimeError):
    """No Chromium executable was found."""


@dataclass
class PageReport:
    """What a reader's browser saw on one page."""

    url: str
    #: the URL finally shown, after any ``<meta http-equiv="refresh">`` redirect
    final_url: str = ""
    title: str = ""
    #: typeset formulas (``mjx-container`` elements), inline and displayed
    math: int = 0
    #: displayed formulas among them (``mjx-container[display="true"]``)
    display_math: int = 0
    #: formulas MathJax could not parse (``mjx-merror``: an undefined macro, a typo)
    math_errors: int = 0
    #: text of math elements left untypeset (raw TeX shown to the reader)
    untypeset: list[str] = field(default_factory=list)
    images: int = 0
    #: ``src`` of every image that did not load
    broken_images: list[str] = field(default_factory=list)
    #: every request that did not go to the local server (the page must be self-contained)
    external_requests: list[str] = field(default_factory=list)
    #: requests that failed or were answered with an HTTP error status
    failed_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    mathjax_loaded: bool = False
    screenshot: Path | None = None

    @property
    def problems(self) -> list[str]:
        """Everything a test would object to, one line each (empty when the page is fine)."""
        out = [f"image did not load: {src}" for src in self.broken_images]
        out += [f"external request: {url}" for url in self.external_requests]
        out += [f"failed request: {url}" for url in self.failed_requests]
        out += [f"console error: {text}" for text in self.console_errors]
        out += [f"page error: {text}" for text in self.page_errors]
        out += [f"math left as raw TeX: {text}" for text in self.untypeset]
        if self.math_errors:
            out.append(f"{self.math_errors} formula(s) with MathJax errors")
        return out


def find_chromium() -> str:
    """Return the path of the system Chromium, or raise :class:`BrowserMissing`."""
    override = os.environ.get("CHROMIUM")
    candidates = [override] if override else []
    candidates += [
        *_CHROMIUM_CANDIDATES,
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise BrowserMissing(
        "Chromium was not found (looked at /usr/bin/chromium and on PATH; set CHROMIUM to "
        "override). Install it: `sudo apt-get install chromium` (Debian/Ubuntu). "
        "Playwright's own browser download is not used."
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(directory: Path | str) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 in a background thread.

    Yields the base URL, ending with ``/`` (e.g. ``http://127.0.0.1:41234/``); the server
    stops when the ``with`` block ends.
    """
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"no such directory to serve: {directory}")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-http", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in _LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in _LOCAL_HOSTS


_META_REFRESH = re.compile(
    r"""<meta[^>]+http-equiv=["']?refresh["']?[^>]*content=["'][^"']*url=([^"'>\s]+)""",
    re.IGNORECASE,
)


def _follow_meta_refresh(page, response) -> None:
    """Wait for a ``<meta http-equiv="refresh">`` redirect (Sphinx's root index.html).

    The target is read from the response body: the redirect may already have happened
    by the time the page could be asked about it.
    """
    if response is None:
        return
    try:
        body = response.text()
    except Exception:  # noqa: BLE001 - not text (or gone): nothing to follow
        return
    match = _META_REFRESH.search(body)
    if match:
        page.wait_for_url(urljoin(response.url, match.group(1)), wait_until="load")


def launch_chromium(playwright):
    """Launch the system Chromium, headless, through a started Playwright instance."""
    return playwright.chromium.launch(
        executable_path=find_chromium(), headless=True, args=list(CHROMIUM_ARGS)
    )


@contextlib.contextmanager
def chromium_context(viewport: tuple[int, int] = (1280, 900)) -> Iterator:
    """A fresh headless-Chromium browser context with the given viewport (one browser
    launch, service workers off); the browser is closed when the ``with`` block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                      service_workers="block")
        finally:
            browser.close()


def block_external(page, external: list[str]) -> None:
    """Let ``page`` fetch only from the local server; record (in ``external``) and abort
    every other request, so that a page depending on the network is reported rather than
    silently fixed up by it."""

    def route(route_, request) -> None:
        if _is_local(request.url):
            route_.continue_()
        else:
            external.append(request.url)
            route_.abort()

    page.route("**/*", route)


def open_page(page, url: str) -> bool:
    """Load ``url`` in ``page`` as a reader would see it settle; return whether MathJax ran.

    Follows Sphinx's ``<meta http-equiv="refresh">`` redirect, waits for MathJax to finish
    typesetting and for the web fonts (MathJax's included), so that sizes measured and
    screenshots taken afterwards are the final ones.
    """
    response = page.goto(url, wait_until="load")
    _follow_meta_refresh(page, response)
    mathjax_loaded = bool(page.evaluate(_WAIT_FOR_MATHJAX))
    page.evaluate("() => document.fonts.ready.then(() => true)")
    page.wait_for_load_state("networkidle")
    return mathjax_loaded


def inspect_page(
    url: str,
    screenshot: Path | None = None,
    *,
    timeout_s: float = 60.0,
    viewport: tuple[int, int] = (1280, 900),
) -> PageReport:
    """Load ``url`` in headless Chromium and report what rendered.

    Requests to anything other than the local server are recorded and then aborted, so
    a page that depends on the network is reported rather than silently fixed up by it.
    With ``screenshot``, a full-page PNG is written there after MathJax has finished.
    """
    report = PageReport(url=url)
    with chromium_context(viewport) as context:
        page = context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        block_external(page, report.external_requests)
        page.on(
            "console",
            lambda msg: report.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))

        def on_finished(response) -> None:
            if response.status >= 400 and _is_local(response.url):
                report.failed_requests.append(f"{response.status} {response.url}")

        def on_failed(request) -> None:
            if _is_local(request.url):
                report.failed_requests.append(f"{request.failure} {request.url}")

        page.on("response", on_finished)
        page.on("requestfailed", on_failed)

        report.mathjax_loaded = open_page(page, url)
        report.final_url = page.url
        measured = page.evaluate(_MEASURE)
        report.title = measured["title"]
        report.math = measured["math"]
        report.display_math = measured["display_math"]
        report.math_errors = measured["math_errors"]
        report.untypeset = measured["untypeset"]
        report.images = len(measured["images"])
        report.broken_images = [img["src"] for img in measured["images"] if not img["ok"]]
        if screenshot is not None:
            screenshot = Path(screenshot)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            report.screenshot = screenshot
    return report
