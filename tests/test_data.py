"""Tests of helpers.data against the real offline mirror and Debian's Fashion-MNIST.

Without the mirror (or the Debian package) the tests that need it are skipped, except under
CI, where a missing data source is a failure. Downloads only ever go to a local HTTP server
or a closed local port; the real user cache is never touched.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import os
import re
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import MIRROR, require

from helpers import data
from helpers.data import DATASETS, CorruptDatasetError, DatasetNotFoundError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens there


def _require(path: Path, what: str) -> Path:
    """``path`` if it exists; else skip (locally) or fail (under CI, where it must exist)."""
    require(path.exists(), f"{what} not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """A private cache, no proxies, and every registered URL pointed at a closed local port,
    so that no test can write to the user's cache or reach the network."""
    monkeypatch.setenv("NB_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    for name, ds in DATASETS.items():
        files = tuple(
            dataclasses.replace(f, urls=(f"{CLOSED_PORT}/{name}/{f.name}",)) for f in ds.files
        )
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(ds, files=files))


@pytest.fixture
def mirror() -> Path:
    """The offline mirror (a source of real files; NB_DATA is left alone)."""
    return _require(MIRROR, "offline data mirror")


@pytest.fixture
def from_mirror(mirror, monkeypatch) -> Path:
    """The offline mirror, set as NB_DATA: loaders read the real files from it."""
    monkeypatch.setenv("NB_DATA", str(mirror))
    return mirror


@pytest.fixture
def debian_fashion() -> Path:
    return _require(DEBIAN_FASHION, "Debian's dataset-fashion-mnist package")


@pytest.fixture
def empty_nb_data(monkeypatch, tmp_path) -> Path:
    """NB_DATA pointing at an empty folder, to be filled by the test."""
    path = tmp_path / "nb_data"
    path.mkdir()
    monkeypatch.setenv("NB_DATA", str(path))
    return path


def _set_urls(monkeypatch, name: str, *urls: str) -> data.DataFile:
    """Give the (single-file) dataset ``name`` these URLs; return its DataFile."""
    ds = DATASETS[name]
    (f,) = ds.files
    f = dataclasses.replace(f, urls=urls)
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(ds, files=(f,)))
    return f


def _leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --------------------------------------------------------------------------- local server


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, honouring ``Range: bytes=0-N`` (the stdlib handler ignores Range).

    Like Hugging Face, ``/resolve/<file>`` answers 302 to ``/<file>``, with the file's sha256
    in an ``X-Linked-Etag`` header (quoted, as an ETag is) where ``published`` has one.
    """

    ranges: list[str | None]
    honour_range = True
    published: dict[str, str] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        if self.path.startswith("/resolve/"):
            name = self.path.removeprefix("/resolve/")
            self.send_response(302)
            self.send_header("Location", "/" + name)
            if name in self.published:
                self.send_header("X-Linked-Etag", f'"{self.published[name]}"')
            self.end_headers()
            return None
        self.ranges.append(self.headers.get("Range"))
        match = re.fullmatch(r"bytes=0-(\d+)", self.headers.get("Range") or "")
        path = Path(self.translate_path(self.path))
        if not (match and self.honour_range and path.is_file()):
            return super().do_GET()
        body = path.read_bytes()[: int(match[1]) + 1]
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{path.stat().st_size}")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder, list of Range headers received) of a local HTTP server."""
    root = tmp_path / "www"
    root.mkdir()
    ranges: list[str | None] = []
    handler = type("Handler", (_RangeHandler,), {"ranges": ranges})

    def make(*args):
        return handler(*args, directory=str(root))

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, ranges
    httpd.shutdown()
    httpd.server_close()


# --------------------------------------------------------------------------- MNIST


def test_registry_is_complete():
    assert {"mnist", "fashion-mnist", "tinystories-sample", *data.TEXTS} <= set(DATASETS)
    for ds in DATASETS.values():
        for f in ds.files:
            # Pinned here, or published by the server at download time (and then recorded).
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256 or "") or f.sha256_header, f.name
            assert f.urls
    with pytest.raises(ValueError, match="exactly one of sha256 and sha256_header"):
        data.DataFile("x.txt", ("http://x",), None)


def test_mnist_train(from_mirror):
    train = data.load_mnist("train")
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (60000,) and train.labels.dtype == np.uint8
    hist = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(train.labels).tolist() == hist
    first20 = " ".join(map(str, train.labels[:20]))
    assert first20 == "5 0 4 1 9 2 1 3 1 4 3 5 3 6 1 7 2 8 6 9"
    assert train.images.max() == 255 and train.images.flags.writeable


def test_mnist_test(from_mirror):
    images, labels = data.load_mnist("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    hist = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(labels).tolist() == hist


def test_fetch_returns_only_requested_files(from_mirror):
    paths = data.fetch("mnist", ["t10k-labels-idx1-ubyte.gz"])
    assert paths == {
        "t10k-labels-idx1-ubyte.gz": from_mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"
    }


@pytest.mark.parametrize("loader", [data.load_mnist, data.load_fashion_mnist])
def test_bad_split(loader):
    with pytest.raises(ValueError, match="train.*test"):
        loader("validation")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="mnist"):
        data.fetch("cifar10")


# --------------------------------------------------------------------------- Fashion-MNIST


def _check_fashion(split: str, n: int):
    images, labels = data.load_fashion_mnist(split)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [n // 10] * 10
    assert len(data.FASHION_MNIST_CLASSES) == 10


def test_fashion_mnist_from_debian(debian_fashion, empty_nb_data):
    _check_fashion("train", 60000)
    _check_fashion("test", 10000)
    paths = data.fetch("fashion-mnist")
    assert all(p.parent == debian_fashion for p in paths.values())


def test_fashion_mnist_from_nb_data(debian_fashion, empty_nb_data):
    shutil.copytree(debian_fashion, empty_nb_data / "fashion-mnist")
    _check_fashion("test", 10000)
    paths = data.fetch("fashion-mnist")
    assert all(p.parent == empty_nb_data / "fashion-mnist" for p in paths.values())


# --------------------------------------------------------------------------- text


def test_tinyshakespeare(from_mirror):
    text = data.load_text("tinyshakespeare")
    assert text.startswith("First Citizen:\nBefore we proceed any further")
    assert text.endswith("Whiles thou art waking.")


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("war_and_peace", "WAR AND PEACE\n", "a dependence of which we are not\nconscious."),
        (
            "pride_and_prejudice",
            "PRIDE AND PREJUDICE\n\nBy Jane Austen\n",
            "had been the means of uniting them.",
        ),
        (
            "shakespeare_complete_works",
            "The Complete Works of William Shakespeare\n",
            "Means to immure herself and not be seen.\n\n\n    \n\n  FINIS",
        ),
    ],
)
def test_gutenberg_books_are_stripped(from_mirror, name, start, end):
    text = data.load_text(name)
    assert text.startswith(start)
    assert text.endswith(end)
    for edge in (text[:3000], text[-3000:]):
        assert "gutenberg" not in edge.lower()
        assert "*** " not in edge
    assert "CONTENT NOTE" not in text
    assert "\r" not in text and "\ufeff" not in text
    assert text == text.strip("\n")


def test_raw_files_have_bom_and_crlf(mirror):
    """The loader's normalisation is needed: the mirror's files really have BOMs and CRLF."""
    raw = (mirror / "text" / "shakespeare_complete_works_pg100.txt").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw


@pytest.mark.parametrize(
    ("book", "missing"),
    [
        (b"The Project Gutenberg eBook of War and Peace\r\n\r\nNo markers.\r\n", "START"),
        (b"*** START OF THE PROJECT GUTENBERG EBOOK WAR AND PEACE ***\r\nBody.\r\n", "END"),
    ],
)
def test_missing_gutenberg_marker_is_an_error(empty_nb_data, monkeypatch, book, missing):
    """A Gutenberg book without its markers is an error, never returned unstripped."""
    (empty_nb_data / "text").mkdir()
    (empty_nb_data / "text" / "war_and_peace_pg2600.txt").write_bytes(book)
    (f,) = DATASETS["war_and_peace"].files
    f = dataclasses.replace(f, sha256=hashlib.sha256(book).hexdigest())
    monkeypatch.setitem(
        DATASETS, "war_and_peace", dataclasses.replace(DATASETS["war_and_peace"], files=(f,))
    )
    with pytest.raises(ValueError, match=f"{missing} OF THE PROJECT GUTENBERG EBOOK"):
        data.load_text("war_and_peace")


def test_unknown_text_name():
    with pytest.raises(ValueError, match="tinyshakespeare.*war_and_peace"):
        data.load_text("moby_dick")


# --------------------------------------------------------------------------- TinyStories


def test_tinystories(from_mirror):
    stories = data.load_tinystories()
    assert len(stories) == 2316
    assert stories[0].startswith("One day, a little girl named Lily")
    assert not any("<|endoftext|>" in s for s in stories)
    assert all(s == s.strip() and s for s in stories)


STORIES = "First story.\n<|endoftext|>\n\nSecond story,\r\nin two lines.\n<|endoftext|>  \nLast"
STORIES_PARSED = ["First story.", "Second story,\nin two lines.", "Last"]


def _hub_file(monkeypatch, root: Path, base: str, content: str, published: str | None):
    """Serve TinyStories-valid.txt as the hub does; the registry points at it."""
    (root / "TinyStories-valid.txt").write_bytes(content.encode())
    table = {"TinyStories-valid.txt": published} if published else {}
    monkeypatch.setattr(_RangeHandler, "published", table)
    ds = DATASETS["tinystories"]
    files = tuple(dataclasses.replace(f, urls=(f"{base}/resolve/{f.name}",)) for f in ds.files)
    monkeypatch.setitem(DATASETS, "tinystories", dataclasses.replace(ds, files=files))


def test_full_tinystories_checked_against_the_published_sha256(
    empty_nb_data, server, tmp_path, monkeypatch
):
    base, root, _ = server
    digest = hashlib.sha256(STORIES.encode()).hexdigest()
    _hub_file(monkeypatch, root, base, STORIES, digest)
    assert data.load_tinystories("valid") == STORIES_PARSED
    cached = tmp_path / "cache" / "tinystories" / "TinyStories-valid.txt"
    record = data.sidecar(cached)
    assert _leftovers(tmp_path / "cache") == [cached, record]
    assert record.read_text() == f"{digest}  TinyStories-valid.txt\n"  # sha256sum -c reads it
    # From the cache from now on, read lazily as far as needed, and checked every time.
    (root / "TinyStories-valid.txt").unlink()
    assert data.load_tinystories("valid", max_stories=2) == STORIES_PARSED[:2]
    cached.write_bytes(STORIES.replace("Last", "Lost").encode())
    with pytest.raises(CorruptDatasetError, match=f"expected sha256 {digest}"):
        data.load_tinystories("valid")


@pytest.mark.parametrize("published", ["0" * 64, None])
def test_full_tinystories_download_that_cannot_be_verified_is_refused(
    empty_nb_data, server, tmp_path, monkeypatch, published
):
    base, root, _ = server
    _hub_file(monkeypatch, root, base, STORIES, published)
    expected = "checksum mismatch" if published else "published no sha256 in the X-Linked-Etag"
    with pytest.raises(DatasetNotFoundError, match=expected):
        data.load_tinystories("valid")
    assert _leftovers(tmp_path / "cache") == []


def test_stories_are_read_no_further_than_needed():
    """The 1.9 GB training file must not be read whole to get its first stories."""
    lines = iter(STORIES.replace("\r\n", "\n").splitlines(keepends=True))
    assert data._split_stories(lines, 1) == STORIES_PARSED[:1]
    assert next(lines) == "\n"  # the line after the first separator is still unread


def test_full_tinystories_copied_by_hand_needs_its_checksum(empty_nb_data):
    folder = empty_nb_data / "tinystories"
    folder.mkdir()
    (folder / "TinyStories-valid.txt").write_text(STORIES)
    with pytest.raises(CorruptDatasetError, match="sha256sum TinyStories-valid.txt"):
        data.load_tinystories("valid")
    digest = hashlib.sha256(STORIES.encode()).hexdigest()
    (folder / "TinyStories-valid.txt.sha256").write_text(f"{digest}  TinyStories-valid.txt\n")
    assert data.load_tinystories("valid") == STORIES_PARSED
    with pytest.raises(ValueError, match="valid: sample, train, valid"):
        data.load_tinystories("test")


# --------------------------------------------------------------------------- verification


def test_truncated_gzip_is_corrupt(mirror, empty_nb_data, tmp_path):
    src = mirror / "mnist"
    (empty_nb_data / "mnist").mkdir()
    shutil.copy(src / "t10k-images-idx3-ubyte.gz", empty_nb_data / "mnist")
    bad = empty_nb_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes((src / bad.name).read_bytes()[:2000])
    # A good copy in the cache must not be used instead: the damaged mirror is reported.
    (tmp_path / "cache" / "mnist").mkdir(parents=True)
    shutil.copy(src / bad.name, tmp_path / "cache" / "mnist")
    with pytest.raises(CorruptDatasetError) as err:
        data.load_mnist("test")
    assert str(bad) in str(err.value) and err.value.path == bad
    assert "unreadable" in str(err.value) and "NB_DATA" in str(err.value)


def test_changed_byte_is_corrupt(mirror, empty_nb_data):
    (empty_nb_data / "text").mkdir()
    bad = empty_nb_data / "text" / "tinyshakespeare.txt"
    raw = bytearray((mirror / "text" / bad.name).read_bytes())
    raw[1000] ^= 1
    bad.write_bytes(raw)
    with pytest.raises(CorruptDatasetError, match="corrupt") as err:
        data.load_text("tinyshakespeare")
    expected = DATASETS["tinyshakespeare"].files[0].sha256
    assert err.value.expected == expected
    assert err.value.actual == hashlib.sha256(raw).hexdigest()
    assert str(bad) in str(err.value)


def test_gz_checksum_is_of_decompressed_bytes(mirror, empty_nb_data):
    """A re-gzipped copy (another header, another compression level) still verifies."""
    (empty_nb_data / "mnist").mkdir()
    name = "t10k-labels-idx1-ubyte.gz"
    content = gzip.decompress((mirror / "mnist" / name).read_bytes())
    (empty_nb_data / "mnist" / name).write_bytes(gzip.compress(content, 9, mtime=0))
    assert data.fetch("mnist", [name])[name] == empty_nb_data / "mnist" / name


# --------------------------------------------------------------------------- downloads


def test_not_found_anywhere(empty_nb_data, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        data.load_text("war_and_peace")
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert "'war_and_peace'" in message and "war_and_peace_pg2600.txt" in message
    assert str(empty_nb_data / "text" / "war_and_peace_pg2600.txt") in message
    assert str(tmp_path / "cache" / "text" / "war_and_peace_pg2600.txt") in message
    assert f"{CLOSED_PORT}/war_and_peace/war_and_peace_pg2600.txt" in message
    assert "NB_DATA" in message
    assert _leftovers(tmp_path / "cache") == []


def test_not_found_lists_system_location_and_unset_nb_data(monkeypatch):
    monkeypatch.delenv("NB_DATA", raising=False)
    monkeypatch.setitem(
        DATASETS,
        "fashion-mnist",
        dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(Path("/nonexistent/fm"),)),
    )
    with pytest.raises(DatasetNotFoundError) as err:
        data.load_fashion_mnist("test")
    message = str(err.value)
    assert "NB_DATA is not set" in message
    assert "/nonexistent/fm/t10k-images-idx3-ubyte.gz" in message


def test_download_into_cache(mirror, empty_nb_data, server, tmp_path, monkeypatch):
    base, root, _ = server
    shutil.copy(mirror / "text" / "tinyshakespeare.txt", root / "input.txt")
    # The first URL fails, the second one works.
    _set_urls(monkeypatch, "tinyshakespeare", f"{CLOSED_PORT}/input.txt", f"{base}/input.txt")
    text = data.load_text("tinyshakespeare")
    assert text.startswith("First Citizen:")
    cached = tmp_path / "cache" / "text" / "tinyshakespeare.txt"
    assert _leftovers(tmp_path / "cache") == [cached]
    assert cached.read_bytes() == (root / "input.txt").read_bytes()
    # Once cached, the file is used from there: the server is no longer needed.
    (root / "input.txt").unlink()
    assert data.fetch("tinyshakespeare") == {"tinyshakespeare.txt": cached}


def test_range_download(mirror, empty_nb_data, server, tmp_path, monkeypatch):
    """The TinyStories sample is the first 2 MiB of a larger file, fetched with Range."""
    base, root, ranges = server
    sample = (mirror / "tinystories" / "TinyStories-train-sample-2MiB.txt").read_bytes()
    (root / "TinyStories-train.txt").write_bytes(sample + b"rest of the story.\n" * 5000)
    f = _set_urls(monkeypatch, "tinystories-sample", f"{base}/TinyStories-train.txt")
    assert len(data.load_tinystories()) == 2316
    assert ranges == [f"bytes=0-{f.first_bytes - 1}"]
    cached = tmp_path / "cache" / "tinystories" / f.name
    assert _leftovers(tmp_path / "cache") == [cached]
    assert cached.read_bytes() == sample


def test_range_ignored_by_server(mirror, empty_nb_data, server, tmp_path, monkeypatch):
    """A server that answers 200 with the whole file: only the prefix is kept."""
    base, root, _ = server
    monkeypatch.setattr(_RangeHandler, "honour_range", False)
    sample = (mirror / "tinystories" / "TinyStories-train-sample-2MiB.txt").read_bytes()
    (root / "full.txt").write_bytes(sample + b"more" * 1000)
    f = _set_urls(monkeypatch, "tinystories-sample", f"{base}/full.txt")
    data.fetch("tinystories-sample")
    assert (tmp_path / "cache" / "tinystories" / f.name).read_bytes() == sample


def test_bad_download_leaves_nothing(mirror, empty_nb_data, server, tmp_path, monkeypatch):
    base, root, _ = server
    raw = bytearray((mirror / "text" / "tinyshakespeare.txt").read_bytes())
    raw[-2] ^= 1
    (root / "input.txt").write_bytes(raw)
    _set_urls(monkeypatch, "tinyshakespeare", f"{base}/input.txt")
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch") as err:
        data.load_text("tinyshakespeare")
    assert hashlib.sha256(raw).hexdigest() in str(err.value)
    assert _leftovers(tmp_path / "cache") == []


def test_gutenberg_mismatch_says_newer_edition(empty_nb_data, server, tmp_path, monkeypatch):
    """gutenberg.org serves newer editions: the error says so. (Its URL is redirected to
    the local server, so the test does not touch the network.)"""
    base, root, _ = server
    (root / "pg2600.txt").write_bytes(b"*** START OF A NEWER EDITION ***\n")
    gutenberg = "https://www.gutenberg.org/cache/epub/2600/pg2600.txt"
    _set_urls(monkeypatch, "war_and_peace", gutenberg)
    real_urlopen = urllib.request.urlopen

    def redirect(request, timeout):
        assert request.full_url == gutenberg
        return real_urlopen(f"{base}/pg2600.txt", timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", redirect)
    with pytest.raises(DatasetNotFoundError) as err:
        data.load_text("war_and_peace")
    assert gutenberg in str(err.value)
    assert "checksum mismatch" in str(err.value) and "newer edition" in str(err.value)
    assert _leftovers(tmp_path / "cache") == []


def test_cache_dir_order(monkeypatch, tmp_path):
    assert data.cache_dir() == tmp_path / "cache"  # NB_CACHE_DIR, set by the autouse fixture
    monkeypatch.delenv("NB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "dl-notes"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "dl-notes"


def test_diabetes_is_bundled_with_scikit_learn():
    X, y = data.load_diabetes()
    assert X.shape == (442, 10) and y.shape == (442,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert np.allclose(X.mean(axis=0), 0, atol=1e-12)  # centred, unit norm per column
    assert np.allclose((X**2).sum(axis=0), 1)
    assert y[:3].tolist() == [151.0, 75.0, 141.0]


# --------------------------------------------------------------------------- faults on disk


def test_an_empty_file_is_called_empty(empty_nb_data):
    (empty_nb_data / "text").mkdir()
    empty = empty_nb_data / "text" / "tinyshakespeare.txt"
    empty.touch()
    with pytest.raises(CorruptDatasetError, match=r"is empty \(0 bytes\)") as err:
        data.load_text("tinyshakespeare")
    assert err.value.path == empty and "NB_DATA" in str(err.value)


def _serve_shakespeare(mirror: Path, server, monkeypatch) -> Path:
    """Serve the tiny Shakespeare text locally; return where the download will land."""
    base, root, _ = server
    shutil.copy(mirror / "text" / "tinyshakespeare.txt", root / "input.txt")
    _set_urls(monkeypatch, "tinyshakespeare", f"{base}/input.txt")
    return Path(data.cache_dir()) / "text" / "tinyshakespeare.txt"


def test_a_killed_download_is_cleaned_up_by_the_next(
    mirror, empty_nb_data, server, monkeypatch
):
    """A part file nobody has written to for a while is a dead download's: the next download
    of that file removes it. A recent one may be another process's, still at work."""
    dest = _serve_shakespeare(mirror, server, monkeypatch)
    dest.parent.mkdir(parents=True)
    dead = dest.parent / f".{dest.name}.k1ll3d.part"
    live = dest.parent / f".{dest.name}.busy.part"
    other = dest.parent / ".other.txt.k1ll3d.part"  # another file's: not this download's
    for part in (dead, live, other):
        part.write_bytes(b"x" * 1000)
    old = time.time() - 24 * 3600  # a day without a write
    for part in (dead, other):
        os.utime(part, (old, old))
    data.load_text("tinyshakespeare")
    assert dest.is_file()
    assert not dead.exists() and live.exists() and other.exists()


def test_a_download_is_on_disk_before_it_takes_its_name(
    mirror, empty_nb_data, server, monkeypatch
):
    dest = _serve_shakespeare(mirror, server, monkeypatch)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source, target) -> None:
        events.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    data.load_text("tinyshakespeare")
    renamed = events.index(("replace", str(dest)))
    assert any(kind == "fsync" and Path(name).name.endswith(".part")
               for kind, name in events[:renamed]), events


def test_downloads_respect_the_umask(mirror, empty_nb_data, server, monkeypatch):
    """A cache shared by a group (NB_CACHE_DIR) needs files others can read."""
    dest = _serve_shakespeare(mirror, server, monkeypatch)
    previous = os.umask(0o022)
    try:
        data.load_text("tinyshakespeare")
    finally:
        os.umask(previous)
    assert dest.stat().st_mode & 0o777 == 0o644


def test_a_large_file_is_hashed_once_until_it_changes(
    empty_nb_data, server, tmp_path, monkeypatch
):
    """The 1.9 GB TinyStories file was hashed at every load; now once, with a stamp that a
    change of size or modification time invalidates."""
    base, root, _ = server
    digest = hashlib.sha256(STORIES.encode()).hexdigest()
    _hub_file(monkeypatch, root, base, STORIES, digest)
    monkeypatch.setattr(data, "VERIFY_ONCE_BYTES", 1)  # every file counts as large
    hashed = []
    real_sha256 = data._sha256
    monkeypatch.setattr(data, "_sha256", lambda p, gz: hashed.append(p) or real_sha256(p, gz))

    assert data.load_tinystories("valid") == STORIES_PARSED  # downloaded: hashed once
    cached = tmp_path / "cache" / "tinystories" / "TinyStories-valid.txt"
    assert len(hashed) == 1 and data.verified_stamp(cached).is_file()
    assert data.load_tinystories("valid") == STORIES_PARSED
    assert data.load_tinystories("valid", max_stories=1) == STORIES_PARSED[:1]
    assert len(hashed) == 1  # the stamp vouches for the unchanged file

    cached.write_bytes(STORIES.replace("Last", "Lost").encode())  # same size, new mtime
    os.utime(cached, ns=(1, 1))
    with pytest.raises(CorruptDatasetError, match=f"expected sha256 {digest}"):
        data.load_tinystories("valid")
    assert len(hashed) == 2


def test_a_small_file_is_hashed_at_every_load(from_mirror, monkeypatch):
    hashed = []
    real_sha256 = data._sha256
    monkeypatch.setattr(data, "_sha256", lambda p, gz: hashed.append(p) or real_sha256(p, gz))
    data.load_tinystories("sample")
    data.load_tinystories("sample")
    assert len(hashed) == 2
    assert not list(from_mirror.glob("tinystories/*.verified"))


def test_the_full_tinystories_offline_names_the_sample(empty_nb_data):
    with pytest.raises(DatasetNotFoundError) as caught:
        data.load_tinystories("train", max_stories=10)
    message = str(caught.value)
    assert "could not be downloaded" in message  # the usual report of where it looked
    assert '`tinystories = "sample"`' in message
    assert "-p tinystories sample" in message
