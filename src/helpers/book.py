"""Build the HTML book: fetch MathJax for offline math, regenerate pages, run jupyter-book.

The book must work without a network connection, so MathJax is not taken from a CDN: the
pinned npm package is fetched once with ``npm pack`` into ``.cache/`` (git-ignored) and the
parts the browser needs (one combined script, the TeX extensions it autoloads, the CHTML
fonts, the menu and accessibility components) are copied to ``.cache/static/mathjax/``.
``_config.yml`` lists ``.cache/static`` in ``html_static_path``, so Sphinx publishes the
files as ``_static/mathjax/`` next to every page.

Why not a root ``_static/`` folder: jupyter-book adds every ``*.js`` file below a root
``_static/`` folder as a ``<script>`` tag to every page, which would load all of MathJax's
extension files on every page and break them.

Command line::

    python -m helpers.book [--no-strict] [--output DIR] [--mathjax-only]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

from helpers.pages import write_pages
from helpers.structure import BookError, find_root

__all__ = [
    "BookBuildError",
    "MATHJAX_SCRIPT",
    "MATHJAX_VERSION",
    "MathJaxError",
    "build",
    "ensure_mathjax",
    "mathjax_dir",
]

#: Pinned MathJax release taken from the npm registry.
MATHJAX_VERSION = "3.2.2"
#: The combined component Sphinx loads (TeX and MathML input, CommonHTML output): the same
#: component Sphinx uses by default from its CDN.
MATHJAX_SCRIPT = "tex-mml-chtml.js"
#: Folders below ``package/es5/`` that the combined component may load at run time:
#: TeX extensions (autoload, e.g. ``\require``, mhchem, physics), the CHTML web fonts, the
#: contextual menu and its accessibility options (explorer, speech maps in English).
_MATHJAX_DIRS = ("input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y")
_MATHJAX_FILES = (MATHJAX_SCRIPT, "sre/mathmaps/base.json", "sre/mathmaps/en.json")
#: Where the files go, relative to the book root (a folder listed in ``html_static_path``).
_STATIC_DIR = Path(".cache") / "static"
_CACHE_DIR = Path(".cache")
_LOG_TAIL_LINES = 60


class MathJaxError(RuntimeError):
    """MathJax could not be fetched: without it the book's math does not render offline."""


class BookBuildError(RuntimeError):
    """``jupyter-book build`` failed; the message ends with the tail of its log."""


def mathjax_dir(root: Path) -> Path:
    """The folder holding MathJax inside the book root (published as ``_static/mathjax``)."""
    return Path(root) / _STATIC_DIR / "mathjax"


def _npm_missing_message(reason: str) -> str:
    return (
        f"{reason}\n"
        f"MathJax {MATHJAX_VERSION} is fetched from the npm registry with `npm pack` so that "
        "the book's math renders offline, without a CDN. Install Node.js and npm "
        "(Debian/Ubuntu: `sudo apt-get install nodejs npm`; elsewhere: https://nodejs.org) "
        "and make sure the npm registry is reachable, then build again. Without MathJax "
        "every formula would be shown as raw LaTeX when the book is read offline."
    )


def _fetch_tarball(cache: Path) -> Path:
    """Return the cached ``mathjax-<version>.tgz``, running ``npm pack`` when absent."""
    tarball = cache / f"mathjax-{MATHJAX_VERSION}.tgz"
    if tarball.is_file():
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise MathJaxError(_npm_missing_message("`npm` was not found on PATH."))
    cache.mkdir(parents=True, exist_ok=True)
    spec = f"mathjax@{MATHJAX_VERSION}"
    try:
        proc = subprocess.run(
            [npm, "pack", spec, "--silent", "--pack-destination", str(cache)],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MathJaxError(_npm_missing_message(f"`npm pack {spec}` failed: {exc}")) from exc
    if proc.returncode != 0 or not tarball.is_file():
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise MathJaxError(
            _npm_missing_message(f"`npm pack {spec}` failed (exit {proc.returncode}):\n{detail}")
        )
    return tarball


def _wanted(member: str) -> str | None:
    """Map a tarball member to its path below the MathJax folder, or None to skip it."""
    path = PurePosixPath(member)
    if path.parts[:2] != ("package", "es5") or len(path.parts) < 3:
        return None
    rel = PurePosixPath(*path.parts[2:])
    text = rel.as_posix()
    if text in _MATHJAX_FILES or any(text.startswith(d + "/") for d in _MATHJAX_DIRS):
        return text
    return None


def _extract(tarball: Path, dest: Path) -> None:
    """Copy the needed part of ``package/es5`` from ``tarball`` into ``dest`` atomically."""
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive.getmembers():
                rel = _wanted(member.name)
                if rel is None or not member.isfile():
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
            licence = archive.extractfile("package/LICENSE")
            if licence is not None:
                with licence:
                    (staging / "LICENSE").write_bytes(licence.read())
    except (tarfile.TarError, KeyError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        tarball.unlink(missing_ok=True)  # a corrupt download: fetch again next time
        raise MathJaxError(f"could not unpack {tarball}: {exc}; run the build again") from exc
    if not (staging / MATHJAX_SCRIPT).is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise MathJaxError(f"{tarball} has no es5/{MATHJAX_SCRIPT}: not a MathJax 3 package")
    (staging / "VERSION").write_text(MATHJAX_VERSION + "\n")  # which pin this folder holds
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)


def ensure_mathjax(root: Path) -> Path:
    """Make sure MathJax is in the book's static files; return the path of its script.

    Does nothing when ``<root>/.cache/static/mathjax/`` holds the script of the pinned
    ``MATHJAX_VERSION`` (its ``VERSION`` file says which). Otherwise fetches the pinned
    ``mathjax`` npm package into ``<root>/.cache/`` with ``npm pack`` (reusing a tarball
    already there) and extracts what the browser needs (about 3 MB).

    Raises:
        MathJaxError: ``npm`` is missing or the fetch failed; the message says what to
            install.
    """
    dest = mathjax_dir(root)
    script = dest / MATHJAX_SCRIPT
    version = dest / "VERSION"
    if script.is_file() and version.is_file() and version.read_text().strip() == MATHJAX_VERSION:
        return script
    tarball = _fetch_tarball(Path(root) / _CACHE_DIR)
    _extract(tarball, dest)
    return script


def _jupyter_book() -> Path:
    """The ``jupyter-book`` executable of the running interpreter's environment."""
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.exists():
        raise BookBuildError(
            f"{exe} not found: install the pinned requirements into this environment "
            "(pip install -r requirements.txt)"
        )
    return exe


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _problems(log: str) -> list[str]:
    """The warning and error lines of a Sphinx log (what ``-W`` turned into a failure)."""
    return [
        line.strip()
        for line in log.splitlines()
        if re.search(r"\b(WARNING|ERROR|CRITICAL|SEVERE)\b|^[\w.]*(Error|Exception): ", line)
    ]


def build(root: Path, *, strict: bool = True, output: Path | None = None) -> Path:
    """Build the HTML book and return the folder holding ``index.html``.

    Steps: fetch MathJax if needed (:func:`ensure_mathjax`), regenerate the Status and
    Reproduction pages (``helpers.pages.write_pages``), then
    run ``jupyter-book build`` on ``root``. Notebooks are not executed here: the build
    renders the executed copies in ``book/notebooks/`` as they are.

    Args:
        root: the book root (the repository root, holding ``_config.yml``).
        strict: treat Sphinx warnings as errors (``-W --keep-going``), and rebuild every
            page (``--all``) so that no warning hides in an incremental build.
        output: build into ``<output>/_build/html`` instead of ``<root>/_build/html``.

    Raises:
        MathJaxError: MathJax could not be fetched.
        BookBuildError: the build failed; the message ends with the log tail.
    """
    root = Path(root).resolve()
    stray = root / "_static" / "mathjax"
    if stray.exists():
        raise BookBuildError(
            f"{stray} exists: jupyter-book would add every .js file below _static/ to every "
            f"page as a <script> tag, which breaks MathJax. Delete it; MathJax lives in "
            f"{mathjax_dir(root).relative_to(root)} (python -m helpers.book --mathjax-only)."
        )
    ensure_mathjax(root)
    write_pages(root)
    cmd = [str(_jupyter_book()), "build", str(root), "--builder", "html"]
    if strict:
        # --all: a fresh environment, so that every page is read again. An incremental
        # build only reports the warnings of changed pages: a failed strict build would
        # pass on the second try without any change.
        cmd += ["-W", "--keep-going", "--all"]
    if output is not None:
        output = Path(output).resolve()
        output.mkdir(parents=True, exist_ok=True)
        cmd += ["--path-output", str(output)]
    proc = subprocess.run(
        cmd, cwd=root, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    log = _ANSI.sub("", proc.stdout + "\n" + proc.stderr)
    html = (output if output is not None else root) / "_build" / "html"
    if proc.returncode != 0 or not (html / "index.html").is_file():
        problems = "\n".join(_problems(log)) or "(none reported)"
        raise BookBuildError(
            f"jupyter-book build failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- warnings and errors ---\n{problems}\n"
            f"--- last lines of the log ---\n{_tail(log)}"
        )
    return html


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: ``python -m helpers.book``."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.book",
        description="Build the HTML book (MathJax for offline math, generated pages, "
        "jupyter-book build with warnings as errors).",
    )
    parser.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="do not treat Sphinx warnings as errors",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="build into DIR/_build/html instead of the repository's _build/html",
    )
    parser.add_argument(
        "--mathjax-only",
        action="store_true",
        help="only fetch MathJax into .cache/static/mathjax and print its script path",
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="book root (default: found from here)"
    )
    args = parser.parse_args(argv)
    try:
        root = args.root.resolve() if args.root is not None else find_root()
        if args.mathjax_only:
            print(ensure_mathjax(root))
            return 0
        html = build(root, strict=args.strict, output=args.output)
    except (MathJaxError, BookBuildError, BookError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"book built: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
