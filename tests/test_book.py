"""The book builds with warnings as errors, is self-contained, and renders in a browser.

The real book is built once per module (``helpers.book.build``, strict) into a temporary
folder. The static checks read every built HTML file: no page may load a script, a
stylesheet, a font or an image from another host (the book must work offline; MathJax in
particular comes from ``_static/mathjax``). The browser checks load every page listed in
``_toc.yml`` in headless Chromium (``tests/browser.py``): formulas typeset, images loaded,
no request leaving 127.0.0.1, no JavaScript errors. The page-shape checks measure every
page at 1400x900 in one browser session (``tests/page_shape.py``) and hold the pages of
converted chapters and the frame pages to DESIGN.md's "The shape of a lecture page".

Without Chromium the browser checks are skipped with the reason, except under CI (the
``CI`` environment variable set), where they fail.
"""

from __future__ import annotations

import re
import shutil
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import PageReport, block_external, chromium_context, inspect_page, serve
from conftest import REPO_ROOT as ROOT
from conftest import require_chromium
from page_shape import PageShape, format_details, format_table, measure_pages

from helpers import book
from helpers.integrity import toc_files
from helpers.structure import chapters

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


# --- the shape of the pages (DESIGN.md, "The shape of a lecture page") --------------------

#: Limits at 1400x900 for the section pages of converted chapters (and, where they apply,
#: for the frame pages).
MAX_SCREENS = 20
MAX_CODE_SHARE = 0.45
MAX_MEDIAN_CODE_SHARE = 0.30
MAX_PASTED_CHARS = 100
#: The longest code line a section page shows without a sideways scroll: its code box is
#: 748 px wide at 1400x900, for monospace text at about 8.43 px a character.
MAX_CODE_LINE_CHARS = 88
#: A figure saved at 100 dpi shows matplotlib's 10-point labels at 14 px; shrunk below 0.65
#: of its size to fit the column they fall under 9 px (helpers.plots keeps figures narrower).
MIN_FIGURE_SCALE = 0.65
#: Pages that frame the lectures; every chapter overview page is one too.
FRAME_PAGES = ("book/intro", "book/setup", "book/status", "book/reproduction")


def _page_kinds(root: Path | None = None) -> dict[str, str]:
    """Each toc page's kind: section, overview, frame, unconverted (a chapter still in
    one notebook) or other (glossary, bibliography)."""
    root = root or ROOT
    kinds: dict[str, str] = {}
    for chapter in chapters(root):
        if chapter.has_sections:
            kinds[chapter.page] = "overview"
            for name in chapter.notebooks:
                kinds[f"book/notebooks/{name}"] = "section"
        else:
            kinds[chapter.page] = "unconverted"
    for page in FRAME_PAGES:
        kinds.setdefault(page, "frame")
    return {page: kinds.get(page, "other") for page in toc_files(root)}


def _of_kind(shapes: dict[str, PageShape], *kinds: str) -> list[PageShape]:
    found = _page_kinds()
    return [shape for page, shape in shapes.items() if found[page] in kinds]


def _table(shapes: dict[str, PageShape] | list[PageShape]) -> str:
    listed = list(shapes.values()) if isinstance(shapes, dict) else shapes
    return format_table(listed, labels=_page_kinds())


def _text_problems(shape: PageShape) -> list[str]:
    """Pasted values: short, and not bolder than the text around them; the page short."""
    out = []
    if shape.screens > MAX_SCREENS:
        out.append(f"{shape.page}: {shape.screens:.1f} screens high (at most {MAX_SCREENS})")
    if shape.longest_pasted > MAX_PASTED_CHARS:
        out.append(f"{shape.page}: a pasted text of {shape.longest_pasted} characters (at most "
                   f"{MAX_PASTED_CHARS}: glue numbers and short phrases, never sentences): "
                   f"{shape.longest_pasted_text[:80]!r}...")
    if shape.bold_pasted:
        out.append(f"{shape.page}: {len(shape.bold_pasted)} pasted value(s) shown bold, e.g. "
                   f"{shape.bold_pasted[0][:40]!r} (is lecture.css loaded after mystnb.css?)")
    return out


def _assert_none(problems: list[str], shapes: dict[str, PageShape]) -> None:
    assert not problems, "\n".join(problems) + "\n\n" + _table(shapes)


@pytest.fixture(scope="module")
def shapes(site: str) -> dict[str, PageShape]:
    """Every toc page measured at 1400x900, in one browser session."""
    require_chromium()
    measured = measure_pages(site, toc_files(ROOT))
    return {shape.page: shape for shape in measured}


def test_page_shapes_are_printed(shapes: dict[str, PageShape]) -> None:
    """The numbers of every page, pass or fail (shown with -s or -rP; the failing shape
    tests below repeat the table in their message)."""
    print("\n" + _table(shapes) + "\n\n" + format_details(list(shapes.values())))
    assert set(shapes) == set(toc_files(ROOT))


def test_unconverted_chapters_are_measured_only(shapes: dict[str, PageShape]) -> None:
    """Chapters still in one notebook: their numbers are printed, not held to the limits."""
    unconverted = _of_kind(shapes, "unconverted")
    print("\n" + (_table(unconverted) if unconverted else "every chapter is converted"))


def test_section_pages_have_the_lecture_shape(shapes: dict[str, PageShape]) -> None:
    sections = _of_kind(shapes, "section")
    problems = []
    for shape in sections:
        problems += _text_problems(shape)
        if shape.code_share > MAX_CODE_SHARE:
            problems.append(f"{shape.page}: visible code is {100 * shape.code_share:.0f}% of the "
                            f"page (at most {100 * MAX_CODE_SHARE:.0f}%: tag plumbing hide-input)")
        if shape.wide_code:
            problems.append(f"{shape.page}: {len(shape.wide_code)} visible code cell(s) wider "
                            f"than their box, read only by scrolling sideways (keep visible "
                            f"code lines within {MAX_CODE_LINE_CHARS} characters); "
                            f"{shape.wide_code[0]}")
        if shape.uncaptioned:
            problems.append(f"{shape.page}: {len(shape.uncaptioned)} of {shape.images} image(s) "
                            f"not in a numbered, captioned figure: {shape.uncaptioned[:3]}")
        if shape.smallest_scale is not None and shape.smallest_scale < MIN_FIGURE_SCALE:
            problems.append(f"{shape.page}: a figure is shown at {shape.smallest_scale:.2f} of its "
                            f"size, its 10-point labels at about {14 * shape.smallest_scale:.0f} "
                            f"px: draw it with helpers.plots.figure (column width)")
    print("\n" + (_table(sections) if sections else "no chapter is converted to sections yet"))
    _assert_none(problems, shapes)


def test_median_code_share_of_section_pages(shapes: dict[str, PageShape]) -> None:
    sections = _of_kind(shapes, "section")
    if not sections:
        print("no chapter is converted to sections yet")
        return
    median = statistics.median(shape.code_share for shape in sections)
    print(f"median visible code over {len(sections)} section pages: {100 * median:.0f}%")
    assert median <= MAX_MEDIAN_CODE_SHARE, (
        f"median visible code over the section pages is {100 * median:.0f}% (at most "
        f"{100 * MAX_MEDIAN_CODE_SHARE:.0f}%)\n\n" + _table(sections))


def test_frame_pages_have_the_lecture_shape(shapes: dict[str, PageShape]) -> None:
    """Intro, set-up, Status, Reproduction and the chapter overviews: short pages, pasted
    values that read like text, and tables that fit the column at 1400 px."""
    problems = []
    for shape in _of_kind(shapes, "frame", "overview"):
        problems += _text_problems(shape)
        problems += [f"{shape.page}: {line}" for line in shape.overflowing_tables]
    _assert_none(problems, shapes)


def test_reproduction_verdicts_are_visible_without_scrolling(
    shapes: dict[str, PageShape],
) -> None:
    assert "book/reproduction" in shapes, "the Reproduction page is not in _toc.yml"
    reproduction = shapes["book/reproduction"]
    assert reproduction.tables >= 1, "the Reproduction page has no table"
    assert not reproduction.hidden_last_columns, (
        "book/reproduction at 1400 px: " + "; ".join(reproduction.hidden_last_columns))


#: A phone's viewport (CSS pixels): the Reproduction page must read there too.
PHONE = {"width": 390, "height": 844}


def test_reproduction_tables_fit_a_phone(site: str) -> None:
    """At 390 px every Reproduction table keeps its four columns on screen (lecture.css
    tightens tables on narrow screens; a long unit may wrap below its number)."""
    require_chromium()
    with chromium_context((PHONE["width"], PHONE["height"])) as context:
        page = context.new_page()
        block_external(page, external := [])
        page.goto(site + "book/reproduction.html", wait_until="load")
        widths = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.bd-article table')).map((table) => {
              const box = table.closest('.pst-scrollable-table-container')
                || table.parentElement;
              return [table.scrollWidth, box.clientWidth]; })""")
    assert widths and not external
    too_wide = [(i, table, box) for i, (table, box) in enumerate(widths) if table > box]
    assert not too_wide, f"Reproduction tables wider than a phone (index, px, box): {too_wide}"


def test_lecture_css_loads_after_the_extensions_css(html: Path) -> None:
    """Same specificity as myst-nb's bold rule, so it must come later in the page."""
    page = (html / "book" / "intro.html").read_text(encoding="utf8")
    links = re.findall(r'<link rel="stylesheet"[^>]*href="([^"]+)"', page)
    names = [link.rsplit("/", 1)[-1].split("?")[0] for link in links]
    assert "lecture.css" in names, f"lecture.css is not loaded: {names}"
    mystnb = [i for i, name in enumerate(names) if name.startswith("mystnb")]
    assert mystnb and names.index("lecture.css") > max(mystnb), names
    assert (html / "_static" / "lecture.css").is_file()


# A hand-made page with one of each thing the measurement must tell apart, in the markup
# myst-nb and Sphinx write, with their rules that matter here (myst-nb's bold pasted text,
# Sphinx's nowrap inline code, the theme's scrolling table wrapper). Its body is 2700 px
# high, 3 screens, of which two visible code inputs are 450 px (300 px whose line fits the
# box, 150 px with a line too wide for it); the article is 700 px wide.
_PLOT = ('<svg xmlns="http://www.w3.org/2000/svg" width="600" height="200" '
         'viewBox="0 0 600 200"><rect width="600" height="200" fill="#8ac"/></svg>')
_LONG = "https://colab.research.google.com/github/executable-dl/lecture-notes/blob/main/" * 2
#: a code line of 159 characters, far wider than the 700 px box
_WIDE_CODE = "too_wide = [" + ", ".join(f"{i:02d}" for i in range(37)) + "]"
_HAND_MADE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>toy</title>
<style>
  body {{ margin: 0; font: 16px/1.5 sans-serif; }}
  article.bd-article {{ display: flow-root; width: 700px; height: 2700px;
                       padding: 0 20px; }}
  pre {{ margin: 0; }}
  div.cell_input pre {{ overflow-x: auto; }}
  span.pasted-text {{ font-weight: bold; }}
  span.pre {{ white-space: nowrap; }}
  .pst-scrollable-table-container {{ overflow-x: auto; }}
</style>
{css}
</head><body><article class="bd-article">
<p>A loss of <span class="pasted-text">0.25</span>, <strong>a best of
<span class="pasted-text">0.5</span></strong> and <span class="pasted-text">{phrase}</span>.</p>
<div class="cell tag_hide-input"><details class="admonition hide above-input">
<summary>Show code cell source</summary>
<div class="cell_input"><pre style="height: 300px">hidden_plumbing()
{wide}</pre></div></details>
<div class="cell_output"><figure><img src="plot.svg" style="width: 300px" alt="a plot">
<figcaption><p><span class="caption-number">Fig. 1.1 </span>
<span class="caption-text">A plot.</span></p></figcaption></figure></div></div>
<div class="cell"><div class="cell_input"><pre style="height: 300px">the_lesson()
print(the_lesson())</pre></div>
<div class="cell_output"><img src="plot.svg" alt="an uncaptioned plot"></div></div>
<div class="cell"><div class="cell_input"><pre style="height: 150px">import lesson
<span class="n">{wide}</span></pre></div></div>
<figure><img src="plot.svg" alt="an unnumbered figure"><figcaption><p>No number.</p>
</figcaption></figure>
<p>Open <code class="docutils literal notranslate"><span class="pre">{long}</span></code>.</p>
<div class="pst-scrollable-table-container"><table class="table">
<thead><tr><th>Quantity</th><th>Reference</th><th>Ours</th><th>Verdict</th></tr></thead>
<tbody><tr><td>the memory of the Gram matrix</td>
<td><code class="docutils literal notranslate"><span class="pre">{long}</span></code></td>
<td>400 TB</td><td>misses</td></tr></tbody></table></div>
</article></body></html>
"""


def test_page_shape_measures_a_hand_made_page(tmp_path: Path) -> None:
    require_chromium()
    (tmp_path / "plot.svg").write_text(_PLOT, encoding="utf8")
    shutil.copy(ROOT / "book" / "static" / "lecture.css", tmp_path)
    for name, css in (("plain", ""), ("styled", '<link rel="stylesheet" href="lecture.css">')):
        (tmp_path / f"{name}.html").write_text(
            _HAND_MADE.format(css=css, phrase="word " * 30, long=_LONG, wide=_WIDE_CODE),
            encoding="utf8")
    with serve(tmp_path) as base_url:
        plain, styled = measure_pages(base_url, ["plain", "styled"])
    print("\n" + format_table([plain, styled]) + "\n" + format_details([plain, styled]))

    for shape in (plain, styled):
        assert shape.height_px == 2700 and shape.screens == pytest.approx(3.0)
        # the hidden input (300 px, in a closed <details>) counts 0; the visible ones 450 px
        assert shape.code_px == pytest.approx(450, abs=0.5)
        # of the two visible inputs, the one with a line too wide for its box (the hidden
        # input's equally wide line is not shown and does not count)
        assert len(shape.wide_code) == 1, shape.wide_code
        assert shape.wide_code[0].startswith("visible code cell 2 is ")
        assert f"a line of {len(_WIDE_CODE)} chars: 'too_wide = [00, 01," in shape.wide_code[0]
        assert shape.code_share == pytest.approx(450 / 2700, abs=1e-3)
        assert shape.pasted[:2] == ["0.25", "0.5"] and shape.longest_pasted == 150
        assert shape.images == 3
        assert shape.uncaptioned == ["plot.svg", "plot.svg"]  # no figure; no number
        assert shape.smallest_scale == pytest.approx(0.5)  # 300 px shown of 600
        assert shape.tables == 1
    # myst-nb's rule makes the two values outside <strong> bold; lecture.css undoes it,
    # and the one inside <strong> is as bold as its sentence either way
    assert plain.bold_pasted == ["0.25", "word " * 30]
    assert styled.bold_pasted == []
    # a long unbreakable code token: past the column and through the table, until
    # lecture.css lets inline code break anywhere
    assert len(plain.wide_inline) == 1 and len(plain.overflowing_tables) == 1
    assert len(plain.hidden_last_columns) == 1 and "'Verdict'" in plain.hidden_last_columns[0]
    assert styled.wide_inline == [] and styled.overflowing_tables == []
    assert styled.hidden_last_columns == []


def test_page_kinds_follow_the_toc(tmp_path: Path) -> None:
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: Lectures\n    numbered: true\n    chapters:\n"
        "      - file: book/chapters/01_backprop\n        sections:\n"
        "          - file: book/notebooks/01_backprop/01_chain_rule\n"
        "          - file: book/notebooks/01_backprop/02_checks\n"
        "      - file: book/notebooks/02_autodiff\n"
        "  - caption: Results\n    chapters:\n      - file: book/reproduction\n"
        "      - file: book/glossary\n", encoding="utf8")
    assert _page_kinds(tmp_path) == {
        "book/intro": "frame",
        "book/chapters/01_backprop": "overview",
        "book/notebooks/01_backprop/01_chain_rule": "section",
        "book/notebooks/01_backprop/02_checks": "section",
        "book/notebooks/02_autodiff": "unconverted",
        "book/reproduction": "frame",
        "book/glossary": "other",
    }
