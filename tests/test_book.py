"""The book builds with warnings as errors, is self-contained, and renders in a browser.

The real book is built once per module (``helpers.book.build``, strict) into a temporary
folder. The static checks read every built HTML file: no page may load a script, a
stylesheet, a font or an image from another host (the book must work offline; MathJax in
particular comes from ``_static/mathjax``). The browser checks load every page listed in
``_toc.yml`` in headless Chromium (``tests/browser.py``): formulas typeset, images loaded,
no request leaving 127.0.0.1, no JavaScript errors.

Without Chromium the browser checks are skipped with the reason, except under CI (the
``CI`` environment variable set), where they fail.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import PageReport, inspect_page, serve
from conftest import REPO_ROOT as ROOT
from conftest import require_chromium

from helpers import book
from helpers.integrity import toc_files

#: ``<link rel=...>`` values that name a related page rather than load a resource.
_NAVIGATION_RELS = {
    "alternate",
    "author",
    "canonical",
    "help",
    "index",
    "license",
    "next",
    "prev",
    "search",
}
_RESOURCE_ATTRIBUTES = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
}
_JS_TYPES = {"", "text/javascript", "application/javascript", "module"}


def _is_external(url: str) -> bool:
    url = url.strip().lower()
    return url.startswith(("http:", "https:", "//", "ws:", "wss:", "ftp:"))


class _ExternalResources(HTMLParser):
    """Collect what a page would fetch from another host when a browser opens it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "link":
            rels = set(values.get("rel", "").lower().split())
            if rels and rels <= _NAVIGATION_RELS:
                return
        for name in _RESOURCE_ATTRIBUTES.get(tag, ()):
            for url in values.get(name, "").split(","):
                url = url.strip().split(" ")[0] if name == "srcset" else url
                if url and _is_external(url):
                    self.found.append(f"<{tag} {name}={url}>")
        if "url(" in values.get("style", "") and "http" in values["style"]:
            self.found.append(f"<{tag} style={values['style'][:120]}>")
        if tag == "script" and "src" not in values:
            self._in_script = values.get("type", "").lower() in _JS_TYPES
        if tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        # inline code that could fetch (import, fetch, @import, url()) must not name a host
        if (self._in_script or self._in_style) and ("http://" in data or "https://" in data):
            start = max(data.find("http://"), data.find("https://"))
            kind = "script" if self._in_script else "style"
            self.found.append(f"inline {kind}: ...{data[start : start + 100]}")


#: What must not survive into the text a reader sees: TeX delimiters, backticks, bold markers
#: and MyST roles. Each is a sign of markup that was not rendered, e.g. a phrase with math
#: pasted with glue:text (plain text) instead of glue:md, or a line of a paragraph that starts
#: with "+ " and so became a list item, cutting a formula in two.
_UNRENDERED = re.compile(
    r"\$|`|\*\*|\\[(\[]|\\(?:mathbf|frac|sqrt|operatorname)\b"
    r"|\{(?:glue|cite|eq|doc|ref|numref|prf)(?::[a-z]+)?\}"
)
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
              "source", "track", "wbr"}


class _VisibleText(HTMLParser):
    """The text of a page as a reader sees it, without code, scripts and typeset math."""

    _HIDDEN_TAGS = {"script", "style", "pre", "code", "svg", "textarea", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._open: list[bool] = []  # per open element: does it hide its content?
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            return
        classes = (dict(attrs).get("class") or "").split()
        hides = tag in self._HIDDEN_TAGS or "math" in classes
        self._open.append(hides)
        self._hidden += hides

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID_TAGS and self._open:
            self._hidden -= self._open.pop()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def unrendered_markup(page_html: str) -> list[tuple[str, str]]:
    """Each piece of markup left in the visible text of a page, with 60 characters around."""
    parser = _VisibleText()
    parser.feed(page_html)
    text = "".join(parser.parts)
    return [(m.group(), text[max(0, m.start() - 60) : m.end() + 60].replace("\n", " "))
            for m in _UNRENDERED.finditer(text)]


def _toc_pages() -> list[str]:
    """The pages of the book, in order, as paths below the HTML folder (``book/x.html``)."""
    return [f"{page}.html" for page in toc_files(ROOT)]


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real book, built with warnings as errors into a temporary folder."""
    return book.build(ROOT, strict=True, output=tmp_path_factory.mktemp("book"))


@pytest.fixture(scope="module")
def site(html: Path):
    """The built book served over HTTP on 127.0.0.1; yields its base URL."""
    with serve(html) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the screenshots (printed with -s or on failure)."""
    return tmp_path_factory.mktemp("screenshots")


# --- the build ---------------------------------------------------------------------------


def test_build_writes_every_page(html: Path) -> None:
    assert (html / "index.html").is_file()
    missing = [page for page in _toc_pages() if not (html / page).is_file()]
    assert not missing, f"pages in _toc.yml that were not built: {missing}"


def test_notebook_sources_are_not_rendered(html: Path) -> None:
    assert not (html / "notebooks").exists(), "notebooks/ (sources) must not be rendered"


def test_mathjax_is_served_locally(html: Path) -> None:
    mathjax = html / "_static" / "mathjax"
    assert (mathjax / book.MATHJAX_SCRIPT).is_file()
    assert any((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("MathJax_Main-*.woff"))
    assert (mathjax / "input" / "tex" / "extensions" / "ams.js").is_file()
    intro = (html / "book" / "intro.html").read_text(encoding="utf8")
    assert f'src="../_static/mathjax/{book.MATHJAX_SCRIPT}' in intro


def test_no_page_loads_anything_from_another_host(html: Path) -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted(html.rglob("*.html")):
        parser = _ExternalResources()
        parser.feed(path.read_text(encoding="utf8", errors="replace"))
        if parser.found:
            offenders[str(path.relative_to(html))] = parser.found
    assert not offenders, f"pages with external scripts, styles or media: {offenders}"


def test_unrendered_markup_is_found_and_rendered_markup_is_not() -> None:
    page = (
        '<head><title>a $ in the title</title></head><p>rendered <span class="math">\\(x\\)'
        '</span> and <code>a = `b`</code>, <pre>print("$x")</pre><br> but pasted $B = 5$ and '
        "{glue:text}`x` and a cut formula \\mathbf{g}</p>"
    )
    found = [token for token, _ in unrendered_markup(page)]
    assert found == ["$", "$", "{glue:text}", "`", "`", "\\mathbf"]


def test_no_page_shows_unrendered_markup(html: Path) -> None:
    offenders = {}
    for path in sorted(html.rglob("*.html")):
        found = unrendered_markup(path.read_text(encoding="utf8", errors="replace"))
        if found:
            offenders[str(path.relative_to(html))] = [context for _, context in found[:3]]
    assert not offenders, f"markup shown as text instead of rendered: {offenders}"


# --- helpers.book ------------------------------------------------------------------------


def test_ensure_mathjax_is_idempotent() -> None:
    script = book.ensure_mathjax(ROOT)
    assert script == book.mathjax_dir(ROOT) / book.MATHJAX_SCRIPT
    assert script.is_file()
    assert book.ensure_mathjax(ROOT) == script


@pytest.fixture
def cached_package(tmp_path: Path) -> Path:
    """A temp book root whose .cache/ already holds the MathJax package (no npm needed)."""
    book.ensure_mathjax(ROOT)  # fetches the package into the repository's .cache if missing
    tarball = ROOT / ".cache" / f"mathjax-{book.MATHJAX_VERSION}.tgz"
    (tmp_path / ".cache").mkdir()
    shutil.copy(tarball, tmp_path / ".cache")
    return tmp_path


def test_ensure_mathjax_extracts_a_cached_package(cached_package: Path, monkeypatch) -> None:
    tmp_path = cached_package
    monkeypatch.setattr(book.shutil, "which", lambda name: None)  # no npm needed
    script = book.ensure_mathjax(tmp_path)
    assert script.is_file()
    size = sum(f.stat().st_size for f in book.mathjax_dir(tmp_path).rglob("*") if f.is_file())
    assert 1_000_000 < size < 8_000_000
    assert not list(book.mathjax_dir(tmp_path).rglob("*-svg*.js")), "only CHTML is needed"


def test_a_new_mathjax_pin_replaces_the_extracted_copy(cached_package: Path, monkeypatch) -> None:
    monkeypatch.setattr(book.shutil, "which", lambda name: None)  # no npm needed
    script = book.ensure_mathjax(cached_package)
    version = book.mathjax_dir(cached_package) / "VERSION"
    assert version.read_text().strip() == book.MATHJAX_VERSION
    version.write_text("3.0.0\n")  # as if the pin had moved on since the folder was extracted
    script.write_text("stale")
    assert book.ensure_mathjax(cached_package) == script
    assert version.read_text().strip() == book.MATHJAX_VERSION and script.stat().st_size > 1000


def test_ensure_mathjax_without_npm_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(book.shutil, "which", lambda name: None)
    with pytest.raises(book.MathJaxError) as info:
        book.ensure_mathjax(tmp_path)
    message = str(info.value)
    assert "apt-get install nodejs npm" in message
    assert "offline" in message


def test_build_failure_reports_the_log(cached_package: Path, monkeypatch) -> None:
    tmp_path = cached_package
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book")
    shutil.copy(ROOT / "book" / "logo.svg", tmp_path / "book")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n", encoding="utf8")
    (tmp_path / "book" / "intro.md").write_text(
        "# Broken\n\nA reference to {doc}`no-such-page`.\n", encoding="utf8"
    )
    with pytest.raises(book.BookBuildError) as info:
        book.build(tmp_path, strict=True, output=tmp_path / "out")
    assert "no-such-page" in str(info.value)


def test_build_refuses_mathjax_in_a_root_static_folder(tmp_path: Path) -> None:
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    with pytest.raises(book.BookBuildError, match="_static"):
        book.build(tmp_path)


# --- the browser -------------------------------------------------------------------------


def _check(report: PageReport) -> None:
    assert not report.problems, f"{report.url}: " + "; ".join(report.problems)


def test_intro_math_typesets_offline(site: str, shots: Path) -> None:
    require_chromium()
    screenshot = shots / "intro.png"
    report = inspect_page(site + "book/intro.html", screenshot=screenshot)
    print(f"screenshot: {screenshot}")
    assert report.mathjax_loaded, "MathJax did not start"
    assert report.display_math >= 1, "the displayed equation was not typeset"
    assert report.math >= 4, f"only {report.math} formulas typeset"
    assert report.images >= 1, "the logo is missing"
    _check(report)
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000


def test_root_redirects_to_the_intro(site: str) -> None:
    require_chromium()
    report = inspect_page(site)
    assert report.final_url.endswith("book/intro.html")
    _check(report)


@pytest.mark.parametrize("page", _toc_pages())
def test_page_renders_offline(site: str, shots: Path, page: str) -> None:
    require_chromium()
    report = inspect_page(site + page, screenshot=shots / (page.replace("/", "__") + ".png"))
    _check(report)
    assert report.images >= 1
