"""The shape of a lecture page, measured in headless Chromium at 1400x900.

DESIGN.md ("The shape of a lecture page") asks for short pages where the code shown is the
lesson, pasted values that read like the text around them, numbered and captioned figures
and tables that fit the column. :func:`measure_pages` loads built pages in one browser
session (one launch for the whole book), waits for MathJax and the web fonts as
``browser.inspect_page`` does, and measures each page:

- ``screens``: the document's ``scrollHeight`` divided by the viewport height (900 px);
- ``code_share``: the summed on-screen height of the code-cell inputs (myst-nb's
  ``div.cell_input``) over the document height. The input of a ``hide-input`` cell sits in
  a closed ``<details class="hide above-input">``, is not rendered and counts as 0 (as does
  any input in a closed dropdown: only inputs that ``checkVisibility()`` counts);
- pasted values (myst-nb's ``span.pasted-text``, from ``{glue:text}``): the longest one's
  length in characters of ``textContent``, and those shown bold (computed
  ``font-weight`` >= 600) where the text around them is not (a value the author pasted
  inside ``**...**`` is as bold as its sentence, and looks like it);
- figures: every image of the article body (``article.bd-article``: cell outputs and page
  images; not the logo, the navigation or the launch buttons) must sit in a ``<figure>``
  whose own ``<figcaption>`` carries a number (Sphinx's ``span.caption-number``, "Fig. 1.3
  "). Images inside an exercise solution (``.solution``) are left out: LECTURE-IDIOMS.md
  asks for an uncaptioned ``{image}`` there. ``smallest_scale`` is the smallest displayed
  width / natural width over the displayed images of figures and cell outputs (a plot
  shrunk far below its natural size has unreadable text);
- tables: a table overflows when its own ``scrollWidth`` exceeds its ``clientWidth``, or
  its wrapper's does (the theme's ``pst-scrollable-table-container``), or it reaches past
  the article's content box. Its last column (or the column headed "Verdict") is hidden
  when one of its cells ends to the right of the viewport or of a scrolling ancestor's
  visible box, i.e. the reader must scroll sideways to see it;
- ``wide_inline``: inline code and links outside tables and code blocks that reach past
  the article's content box (a long URL or identifier that did not wrap);
- ``wide_code``: the visible code-cell inputs (``div.cell_input pre`` that
  ``checkVisibility()`` counts, as for ``code_share``) whose ``scrollWidth`` exceeds their
  ``clientWidth``: a line longer than the box (748 px, about 88 characters, on the built
  pages), which the reader must scroll sideways to read. Each comes with its excess in
  pixels and the start of its first line that ends past the box.

Command line (builds nothing; serves the given HTML folder and measures every page in
``_toc.yml``, the book root found upwards from the current folder or given with --root)::

    .venv/bin/python tests/page_shape.py _build/html
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # run as a script: make the sibling module `browser` importable
    sys.path.insert(0, _TESTS_DIR)

from browser import block_external, chromium_context, open_page, serve  # noqa: E402

__all__ = ["VIEWPORT", "PageShape", "format_details", "format_table", "main", "measure_pages"]

#: The desktop viewport the page-shape limits are stated for (DESIGN.md).
VIEWPORT = (1400, 900)

#: Runs in the page after it has settled; returns plain numbers and short strings.
_MEASURE_SHAPE = """
() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const doc = document.documentElement;
  const height = Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0);
  const viewportWidth = doc.clientWidth;
  const short = (text, n) => {
    text = text.replace(/\\s+/g, ' ').trim();
    return text.length > n ? text.slice(0, n - 1) + '…' : text;
  };

  // Inside a closed <details> (hide-input) an input is not rendered, but asking for its box
  // lays it out anyway (Chromium's ::details-content is content-visibility: hidden), so
  // count only what checkVisibility() says is rendered.
  let code = 0;
  for (const input of article.querySelectorAll('div.cell_input')) {
    if (input.checkVisibility()) code += input.getBoundingClientRect().height;
  }

  // The lines of a <pre> as ranges over its text nodes (highlighting splits them into spans).
  const preLines = (pre) => {
    const lines = [];
    let line = null;
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let from = 0; ;) {
        const newline = node.data.indexOf('\\n', from);
        const to = newline < 0 ? node.data.length : newline;
        if (!line) line = {text: '', startNode: node, startOffset: from};
        line.text += node.data.slice(from, to);
        line.endNode = node;
        line.endOffset = to;
        if (newline < 0) break;
        lines.push(line);
        line = null;
        from = newline + 1;
      }
    }
    if (line) lines.push(line);
    return lines;
  };
  // Visible code inputs wider than their box (same visibility rule as the height above),
  // each with its first line that ends past the content box (else its longest line).
  const wideCode = [];
  let shownCode = 0;
  for (const pre of article.querySelectorAll('div.cell_input pre')) {
    if (!pre.checkVisibility()) continue;
    shownCode += 1;
    if (pre.scrollWidth <= pre.clientWidth) continue;
    const limit = pre.getBoundingClientRect().left + pre.clientLeft + pre.clientWidth
      - parseFloat(getComputedStyle(pre).paddingRight);
    const lines = preLines(pre);
    const range = document.createRange();
    const first = lines.find((line) => {
      range.setStart(line.startNode, line.startOffset);
      range.setEnd(line.endNode, line.endOffset);
      return Array.from(range.getClientRects()).some((rect) => rect.right > limit + 0.5);
    }) || lines.reduce((a, b) => (b.text.length > a.text.length ? b : a), {text: ''});
    wideCode.push({
      number: shownCode,
      excess: pre.scrollWidth - pre.clientWidth,
      chars: first.text.length,
      line: short(first.text, 60),
    });
  }

  const weight = (el) => parseFloat(getComputedStyle(el).fontWeight) || 400;
  const pasted = Array.from(document.querySelectorAll('span.pasted-text')).map((span) => ({
    text: span.textContent,
    weight: weight(span),
    around: span.parentElement ? weight(span.parentElement) : 400,
  }));

  const images = Array.from(article.querySelectorAll('img'))
    .filter((img) => !img.closest('.solution'))
    .map((img) => {
      const figure = img.closest('figure');
      let numbered = false;
      if (figure) {
        const number = figure.querySelector(':scope > figcaption .caption-number');
        numbered = !!number && /\\d/.test(number.textContent);
      }
      const box = img.getBoundingClientRect();
      return {
        src: (img.getAttribute('src') || '').split('/').pop(),
        numbered: numbered,
        plot: !!(figure || img.closest('.cell_output')),
        shown: box.width,
        natural: img.naturalWidth,
      };
    });

  const style = getComputedStyle(article);
  const contentRight = article.getBoundingClientRect().right - parseFloat(style.paddingRight);
  const tables = Array.from(article.querySelectorAll('table')).map((table) => {
    const wrapper = table.parentElement;
    const box = table.getBoundingClientRect();
    const overflow = Math.max(
      table.scrollWidth - table.clientWidth,
      wrapper ? wrapper.scrollWidth - wrapper.clientWidth : 0,
      box.right - contentRight,
    );
    // where the reader's view of the table ends: the viewport, or a scrolling ancestor
    let clip = viewportWidth;
    for (let el = wrapper; el && el !== doc && el !== document.body; el = el.parentElement) {
      if (getComputedStyle(el).overflowX !== 'visible') {
        clip = Math.min(clip, el.getBoundingClientRect().left + el.clientLeft + el.clientWidth);
      }
    }
    const rows = Array.from(table.rows).filter((row) => row.cells.length > 0);
    const header = rows.length
      ? Array.from(rows[0].cells).map((cell) => short(cell.textContent, 20)) : [];
    const column = header.findIndex((text) => text.toLowerCase() === 'verdict');
    const lastRight = Math.max(0, ...rows.map((row) => {
      const cell = column >= 0 && row.cells.length > column ? row.cells[column]
        : row.cells[row.cells.length - 1];
      return cell.getBoundingClientRect().right;
    }));
    return {
      header: header.join(' | '),
      column: column >= 0 ? header[column] : (header[header.length - 1] || ''),
      overflow: overflow,
      lastRight: lastRight,
      clip: clip,
    };
  });

  // inline code and links (outside tables and code blocks) running past the column
  const wide = Array.from(article.querySelectorAll('code, a'))
    .filter((el) => !el.closest('pre, table, .highlight'))
    .filter((el) => el.getBoundingClientRect().right > contentRight + 1)
    .map((el) => short(el.textContent, 60));

  return {height: height, code: code, pasted: pasted, images: images, tables: tables,
          wide: wide, wideCode: wideCode};
}
"""

#: A pixel of slack for sub-pixel layout (fractional widths rounded differently).
_SLACK_PX = 1.0


@dataclass
class PageShape:
    """The measured shape of one built page (see the module docstring for definitions)."""

    page: str
    url: str
    viewport: tuple[int, int] = VIEWPORT
    #: the document's scrollHeight, in CSS pixels
    height_px: float = 0.0
    #: summed on-screen height of the code-cell inputs, in CSS pixels
    code_px: float = 0.0
    #: textContent of every pasted value (``span.pasted-text``), in page order
    pasted: list[str] = field(default_factory=list)
    #: the pasted values shown bold (font-weight >= 600) and bolder than the text around
    bold_pasted: list[str] = field(default_factory=list)
    #: images of the article body (outside exercise solutions)
    images: int = 0
    #: file names of the article images not in a numbered, captioned figure
    uncaptioned: list[str] = field(default_factory=list)
    #: smallest displayed / natural width over figure and output images (None: no image)
    smallest_scale: float | None = None
    smallest_scale_image: str = ""
    tables: int = 0
    #: one line per table wider than its container: its header and the excess in pixels
    overflowing_tables: list[str] = field(default_factory=list)
    #: one line per table whose last (or "Verdict") column is cut off at this width
    hidden_last_columns: list[str] = field(default_factory=list)
    #: inline code and links outside tables that reach past the column (not wrapped)
    wide_inline: list[str] = field(default_factory=list)
    #: one line per visible code-cell input wider than its box (read by scrolling
    #: sideways): its number among the visible inputs, the excess in pixels and the start
    #: of its first line past the box
    wide_code: list[str] = field(default_factory=list)
    mathjax_loaded: bool = False

    @property
    def screens(self) -> float:
        """Page height in screens of the viewport height."""
        return self.height_px / self.viewport[1]

    @property
    def code_share(self) -> float:
        """Visible code-cell input as a share of the page height (0 to 1)."""
        return self.code_px / self.height_px if self.height_px else 0.0

    @property
    def longest_pasted(self) -> int:
        return max((len(text) for text in self.pasted), default=0)

    @property
    def longest_pasted_text(self) -> str:
        return max(self.pasted, key=len, default="")


def _shape(page: str, url: str, viewport: tuple[int, int], raw: dict, mathjax: bool) -> PageShape:
    shape = PageShape(page=page, url=url, viewport=viewport, mathjax_loaded=mathjax)
    shape.height_px = float(raw["height"])
    shape.code_px = float(raw["code"])
    shape.pasted = [item["text"] for item in raw["pasted"]]
    shape.bold_pasted = [item["text"] for item in raw["pasted"]
                         if item["weight"] >= 600 and item["weight"] > item["around"]]
    shape.images = len(raw["images"])
    shape.uncaptioned = [img["src"] for img in raw["images"] if not img["numbered"]]
    scales = [(img["shown"] / img["natural"], img["src"]) for img in raw["images"]
              if img["plot"] and img["shown"] > 0 and img["natural"] > 0]
    if scales:
        shape.smallest_scale, shape.smallest_scale_image = min(scales)
    shape.tables = len(raw["tables"])
    for number, table in enumerate(raw["tables"], start=1):
        if table["overflow"] > _SLACK_PX:
            shape.overflowing_tables.append(
                f"table {number} [{table['header']}] is {table['overflow']:.0f} px too wide")
        if table["lastRight"] > table["clip"] + _SLACK_PX:
            shape.hidden_last_columns.append(
                f"table {number}: column '{table['column']}' ends at {table['lastRight']:.0f} px,"
                f" the view of it at {table['clip']:.0f} px")
    shape.wide_inline = list(raw["wide"])
    shape.wide_code = [
        f"visible code cell {block['number']} is {block['excess']} px wider than its box,"
        f" first at a line of {block['chars']} chars: {block['line']!r}"
        for block in raw["wideCode"]
    ]
    return shape


def measure_pages(
    base_url: str,
    pages: Iterable[str],
    *,
    viewport: tuple[int, int] = VIEWPORT,
    timeout_s: float = 60.0,
) -> list[PageShape]:
    """Measure ``base_url + page + ".html"`` for each page, in one browser session.

    ``pages`` are toc names without suffix (``book/intro``); ``base_url`` ends with ``/``
    (as ``browser.serve`` yields it). Requests leaving the local server are aborted.
    """
    shapes: list[PageShape] = []
    with chromium_context(viewport) as context:
        for page_name in pages:
            url = f"{base_url}{page_name}.html"
            page = context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            block_external(page, [])
            mathjax = open_page(page, url)
            raw = page.evaluate(_MEASURE_SHAPE)
            shapes.append(_shape(page_name, url, viewport, raw, mathjax))
            page.close()
    return shapes


_COLUMNS = ("page", "screens", "code %", "longest pasted", "bold pasted",
            "uncaptioned images", "smallest fig scale", "tables overflowing", "last col cut",
            "wide code/links", "code cells too wide")


def _row(shape: PageShape, label: str = "") -> list[str]:
    scale = "-" if shape.smallest_scale is None else f"{shape.smallest_scale:.2f}"
    return [
        shape.page + (f" ({label})" if label else ""),
        f"{shape.screens:.1f}",
        f"{100 * shape.code_share:.0f}",
        str(shape.longest_pasted),
        f"{len(shape.bold_pasted)} of {len(shape.pasted)}",
        f"{len(shape.uncaptioned)} of {shape.images}",
        scale,
        f"{len(shape.overflowing_tables)} of {shape.tables}",
        str(len(shape.hidden_last_columns)),
        str(len(shape.wide_inline)),
        str(len(shape.wide_code)),
    ]


def format_table(shapes: Sequence[PageShape], labels: dict[str, str] | None = None) -> str:
    """One row per page, aligned columns (``labels`` adds a kind after a page's name)."""
    labels = labels or {}
    rows = [list(_COLUMNS)] + [_row(s, labels.get(s.page, "")) for s in shapes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    if shapes:
        footer = f"viewport {shapes[0].viewport[0]}x{shapes[0].viewport[1]}"
        with_code = [s.code_share for s in shapes if s.code_px > 0]
        if with_code:
            footer += (f"; median code share of the {len(with_code)} page(s) showing code: "
                       f"{100 * statistics.median(with_code):.0f}%")
        lines.append(footer)
    return "\n".join(lines)


def format_details(shapes: Sequence[PageShape]) -> str:
    """What lies behind the table's numbers: the longest pasted value, uncaptioned images,
    the smallest-scaled image, the tables and the code cells that do not fit."""
    lines: list[str] = []
    for s in shapes:
        notes = []
        if s.longest_pasted:
            notes.append(f"longest pasted ({s.longest_pasted} chars): "
                         f"{s.longest_pasted_text[:120]!r}")
        if s.uncaptioned:
            notes.append(f"not in a numbered figure: {', '.join(s.uncaptioned)}")
        if s.smallest_scale is not None:
            notes.append(f"smallest scale {s.smallest_scale:.2f}: {s.smallest_scale_image}")
        notes += s.overflowing_tables + s.hidden_last_columns
        notes += [f"past the column: {text!r}" for text in s.wide_inline]
        notes += s.wide_code
        if notes:
            lines.append(s.page)
            lines += [f"    {note}" for note in notes]
    return "\n".join(lines)


def _html_folder(path: Path) -> Path:
    """Accept the HTML folder itself or a build output folder holding ``_build/html``."""
    for candidate in (path, path / "_build" / "html", path / "html"):
        if (candidate / "index.html").is_file():
            return candidate
    raise SystemExit(f"error: no index.html in {path} (nor in {path}/_build/html): "
                     "build the book first (python -m helpers.book)")


def main(argv: list[str] | None = None) -> int:
    from helpers.structure import find_root, toc_files

    parser = argparse.ArgumentParser(
        prog="python tests/page_shape.py",
        description="Measure the shape of every page of a built book (listed in _toc.yml) "
        "in headless Chromium at 1400x900. Builds nothing.",
    )
    parser.add_argument("html", type=Path, help="the built HTML folder, e.g. _build/html")
    parser.add_argument("pages", nargs="*",
                        help="toc pages to measure (e.g. book/intro); default: all")
    parser.add_argument("--root", type=Path, default=None,
                        help="book root holding _toc.yml (default: found from here)")
    parser.add_argument("--details", action="store_true",
                        help="also print what lies behind the numbers, page by page")
    args = parser.parse_args(argv)
    html = _html_folder(args.html)
    pages = args.pages or toc_files(find_root(args.root))
    with serve(html) as base_url:
        shapes = measure_pages(base_url, pages)
    print(format_table(shapes))
    if args.details:
        print()
        print(format_details(shapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
