"""Every dataset the notebooks use: where it comes from, how it is checked, how it is parsed.

Notebooks never open data files by path; they call a loader (`load_mnist`, `load_text`, ...)
or, for the raw files, `fetch`. Each file of a dataset is looked for in this order, and the
first place where it exists wins:

1. ``$NB_DATA/<folder>/<file>``: an offline mirror (CI sets ``NB_DATA=../shared/data``);
2. the user cache ``<cache>/<folder>/<file>``, where ``<cache>`` is ``$NB_CACHE_DIR`` if set,
   else ``$XDG_CACHE_HOME/dl-notes``, else ``~/.cache/dl-notes``;
3. known system locations (Debian's ``dataset-fashion-mnist`` package installs
   ``/usr/share/datasets/fashion-mnist/``);
4. a download into the cache, trying the dataset's URLs in order.

Whatever is found is verified against the sha256 in the registry before it is used (or, for
the few files nobody could pin in advance, against the sha256 their server published when
they were downloaded, kept beside them; see `DataFile`). A file that fails is reported
(`CorruptDatasetError`, with its path) and never used; we do not quietly move on to the
next place, because a damaged mirror should be fixed, not hidden.

For ``.gz`` files the checksum is of the *decompressed* bytes. Gzip headers carry a file name
and a time stamp that repackagers rewrite (Debian's Fashion-MNIST files differ from upstream
only there), while the data inside is identical; hashing the decompressed bytes accepts any
faithful copy, and a truncated gzip still fails, because decompressing it raises.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
import urllib.request
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
from tqdm.auto import tqdm

from helpers.files import remove_stale_parts, replacing, write_atomically

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "TEXTS",
    "TINYSTORIES_PARTS",
    "CorruptDatasetError",
    "DataFile",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "ImageSet",
    "cache_dir",
    "fetch",
    "load_diabetes",
    "load_fashion_mnist",
    "load_mnist",
    "load_text",
    "load_tinystories",
]

DOWNLOAD_TIMEOUT_S = 30
# A partial download not written to for this long was left by a killed process: the next
# download of the same file removes it (a live download writes a chunk far more often).
STALE_PART_S = 600
#: A file at least this large is hashed once, not at every load: a stamp beside it
#: (``<file>.verified``) records the checksum with the size and modification time it was
#: computed for, and a change to either means hashing again. Hashing the 1.9 GB TinyStories
#: training file takes about 10 s; the other files take milliseconds and are always hashed.
VERIFY_ONCE_BYTES = 64 << 20
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset.

    ``sha256`` is of the decompressed bytes for ``.gz`` files, of the file's bytes otherwise.
    ``first_bytes`` marks a file that is the first N bytes of the file at its URLs: it is
    downloaded with an HTTP ``Range`` request.

    A file whose checksum nobody could pin in advance has ``sha256=None`` and names in
    ``sha256_header`` the HTTP response header in which its server publishes it (Hugging Face
    sends an LFS file's sha256 as ``X-Linked-Etag``). The download is checked against that
    value, which is then kept beside the file in ``<file>.sha256`` (``sha256sum`` format), and
    every later use checks the file against it.
    """

    name: str
    urls: tuple[str, ...]
    sha256: str | None
    first_bytes: int | None = None
    sha256_header: str | None = None

    def __post_init__(self) -> None:
        if (self.sha256 is None) == (self.sha256_header is None):
            raise ValueError(f"{self.name}: give exactly one of sha256 and sha256_header")


@dataclass(frozen=True)
class Dataset:
    """A named set of files kept together in ``folder`` (under the mirror or the cache)."""

    name: str
    folder: str
    files: tuple[DataFile, ...]
    system_dirs: tuple[Path, ...] = ()

    def file(self, name: str) -> DataFile:
        """The `DataFile` called ``name``."""
        for f in self.files:
            if f.name == name:
                return f
        raise ValueError(
            f"dataset {self.name!r} has no file {name!r}; "
            f"its files are: {', '.join(f.name for f in self.files)}"
        )


_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
_MNIST_MIRRORS = (
    "http://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_MNIST_SHA256 = (
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
)
_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)
_FASHION_SHA256 = (
    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
)


def _idx_dataset(name: str, mirrors: tuple[str, ...], sha256s: tuple[str, ...], **kw) -> Dataset:
    files = tuple(
        DataFile(f, tuple(m + f for m in mirrors), s)
        for f, s in zip(_IDX_FILES, sha256s, strict=True)
    )
    return Dataset(name, name, files, **kw)


def _text(name: str, file: str, sha256: str, *urls: str) -> Dataset:
    return Dataset(name, "text", (DataFile(file, urls, sha256),))


_GH = "https://raw.githubusercontent.com/"
_PG = "https://www.gutenberg.org/cache/epub/"
_HF_TINYSTORIES = "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/"

#: The registry: every dataset the notebooks may load, by name. Tests and the README list it.
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        _idx_dataset("mnist", _MNIST_MIRRORS, _MNIST_SHA256),
        _idx_dataset(
            "fashion-mnist",
            _FASHION_MIRRORS,
            _FASHION_SHA256,
            system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        ),
        _text(
            "tinyshakespeare",
            "tinyshakespeare.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            _GH + "karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
            "/data/tinyshakespeare/input.txt",
        ),
        # For the books, pinned copies that match our checksums come first; gutenberg.org
        # serves the newest edition, which will usually fail verification.
        _text(
            "war_and_peace",
            "war_and_peace_pg2600.txt",
            "aa4a454fb73861c0c84c662ed1fa3ddd71bbd7a237783932c05d5f3b2cdd6718",
            _GH + "declanwhchan/Synonyms/126a341ebb049ce99b3681b9ba5fef92c0cec65a/2600-0.txt",
            _PG + "2600/pg2600.txt",
        ),
        _text(
            "pride_and_prejudice",
            "pride_and_prejudice_pg1342.txt",
            "3d00cf3a53dfe55c553f49106e69673aadc52344ae5a8293ae6fa6bb21eabd89",
            _GH + "KArcherSutherland/NLP_ngram/7a9ae46b6200c4950079c3d40c5cefb93ad24965/1342-0.txt",
            _PG + "1342/pg1342.txt",
        ),
        _text(
            "shakespeare_complete_works",
            "shakespeare_complete_works_pg100.txt",
            "17d47ae375676f7576feb3d931784223865403a18537707f9a567247015d6781",
            _GH + "tmgreenside/CPSC_475/51d1a31a264ff978350c8093f12938199eebe4cf/100-0.txt",
            _PG + "100/pg100.txt",
        ),
        Dataset(
            "tinystories-sample",
            "tinystories",
            (
                DataFile(
                    "TinyStories-train-sample-2MiB.txt",
                    (
                        _HF_TINYSTORIES + "TinyStories-train.txt",
                        _GH + "gusjengis/toy-RNN/e4c7ff8bba4ff7989e69a3a816ebe4b14813b41e"
                        "/data/tinystories_sample.txt",
                    ),
                    "5352b299dcb1a32898b2d779b145b5a05f3e1265953fd21c264c9f9f9c9ae33d",
                    first_bytes=2_097_152,
                ),
            ),
        ),
        # The canonical files (1.9 GB and 19 MB); no copy of them is offline, so their
        # checksums are the ones Hugging Face publishes when they are downloaded. The whole
        # training file is downloaded although chapter 6's gpu profile reads only its first
        # 200,000 stories (about 9%): the published checksum is of the whole file, so a
        # prefix could not be verified. It is hashed once (VERIFY_ONCE_BYTES). A Colab
        # session starts with an empty cache: NB_CACHE_DIR on a mounted Google Drive keeps
        # the download from one session to the next.
        Dataset(
            "tinystories",
            "tinystories",
            tuple(
                DataFile(
                    name,
                    (_HF_TINYSTORIES + name,),
                    None,
                    sha256_header="X-Linked-Etag",
                )
                for name in ("TinyStories-train.txt", "TinyStories-valid.txt")
            ),
        ),
    )
}

#: Names accepted by `load_text`; the value says whether it is a Project Gutenberg book.
TEXTS: dict[str, bool] = {
    "tinyshakespeare": False,
    "war_and_peace": True,
    "pride_and_prejudice": True,
    "shakespeare_complete_works": True,
}

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


# --------------------------------------------------------------------------- errors


class DatasetError(Exception):
    """Base class of the errors this module raises about data files."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A file was in none of the places looked and could not be downloaded."""


class CorruptDatasetError(DatasetError, ValueError):
    """A file exists but does not match its checksum (or is not a valid gzip)."""

    def __init__(self, message: str, path: Path, expected: str, actual: str):
        super().__init__(message)
        self.path, self.expected, self.actual = path, expected, actual


# --------------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """The user cache for downloads: ``$NB_CACHE_DIR``, else ``$XDG_CACHE_HOME/dl-notes``,
    else ``~/.cache/dl-notes``. Not created until something is downloaded."""
    if os.environ.get("NB_CACHE_DIR"):
        return Path(os.environ["NB_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dl-notes"


def _candidates(ds: Dataset, f: DataFile) -> list[tuple[str, Path | None]]:
    """(label, path) for each place looked, in order; path None where NB_DATA is unset."""
    mirror = os.environ.get("NB_DATA")
    places: list[tuple[str, Path | None]] = [
        (
            "offline mirror $NB_DATA",
            Path(mirror).expanduser() / ds.folder / f.name if mirror else None,
        ),
        ("user cache", cache_dir() / ds.folder / f.name),
    ]
    places += [("system location", d / f.name) for d in ds.system_dirs]
    return places


# --------------------------------------------------------------------------- verification


def _sha256(path: Path, gz: bool) -> str:
    """sha256 of the file, or of its decompressed content for gzip (raises on a bad gzip)."""
    h = hashlib.sha256()
    with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sidecar(path: Path) -> Path:
    """Where the checksum of a file without a registered one is kept: ``<file>.sha256``."""
    return path.with_name(path.name + ".sha256")


def _expected_sha256(path: Path, f: DataFile) -> str:
    """The registered sha256, or the one recorded beside the file when it was downloaded."""
    if f.sha256 is not None:
        return f.sha256
    record = sidecar(path)
    try:
        return record.read_text().split()[0].lower()
    except (OSError, IndexError):
        raise CorruptDatasetError(
            f"{path} cannot be verified: its checksum file {record} is missing or empty. "
            f"It is written when the file is downloaded; for a copy made by hand, check the "
            f"file against the sha256 its publisher shows and write it there with "
            f"`sha256sum {f.name} > {record.name}`.",
            path,
            "(no recorded checksum)",
            "(not computed)",
        ) from None


def verified_stamp(path: Path) -> Path:
    """Where a large file's last successful check is recorded: ``<file>.verified``."""
    return path.with_name(path.name + ".verified")


def _stamp_text(sha256: str, info: os.stat_result) -> str:
    return f"{sha256} {info.st_size} {info.st_mtime_ns}\n"


def _verified_before(path: Path, expected: str, info: os.stat_result) -> bool:
    """Whether a stamp says this very file (same size and mtime) matched ``expected``."""
    try:
        return verified_stamp(path).read_text() == _stamp_text(expected, info)
    except OSError:
        return False


def _verify(
    path: Path, f: DataFile, what_to_do: str, expected: str | None = None, stamp: bool = True
) -> None:
    """Raise CorruptDatasetError unless ``path`` holds the content registered for ``f``.

    A large file's success is stamped (see `VERIFY_ONCE_BYTES`) unless ``stamp`` is false."""
    info = path.stat()
    if info.st_size == 0:
        raise CorruptDatasetError(f"{path} is empty (0 bytes). {what_to_do}", path,
                                  expected or "(a non-empty file)", "(empty file)")
    expected = expected or _expected_sha256(path, f)
    large = stamp and info.st_size >= VERIFY_ONCE_BYTES
    if large and _verified_before(path, expected, info):
        return
    gz = f.name.endswith(".gz")
    try:
        actual = _sha256(path, gz)
    except (OSError, EOFError, zlib.error) as e:  # truncated or damaged gzip stream
        actual = f"unreadable ({type(e).__name__}: {e})"
    if actual == expected:
        if large:  # where the folder is read-only (a mirror), the next load hashes again
            with contextlib.suppress(OSError):
                write_atomically(verified_stamp(path), _stamp_text(expected, info))
        return
    kind = "decompressed " if gz else ""
    raise CorruptDatasetError(
        f"{path} is corrupt: expected {kind}sha256 {expected}, got {actual}. {what_to_do}",
        path,
        expected,
        actual,
    )


def _what_to_do(label: str, path: Path) -> str:
    if label == "user cache":
        return f"Delete {path} and run again to download a fresh copy."
    if label.startswith("offline mirror"):
        return (
            "Replace it with a good copy (check the mirror with `sha256sum -c SHA256SUMS`) "
            "or unset NB_DATA to use the cache and downloads instead."
        )
    return "Reinstall the package that provides it, or delete it."


# --------------------------------------------------------------------------- download


class _HeaderRecorder(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib does, remembering one header of every response on the
    way: Hugging Face publishes a file's sha256 on its redirect to the storage server."""

    def __init__(self, header: str):
        self.header = header
        self.seen: list[str] = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913
        if (value := headers.get(self.header)) is not None:
            self.seen.append(value)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _published_sha256(url: str, header: str, values: list[str]) -> str:
    """The sha256 a server published in ``header`` (an ETag may come quoted or weak)."""
    for value in values:
        digest = value.strip().removeprefix("W/").strip('"').lower()
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            return digest
    raise DatasetError(
        f"{url}: the server published no sha256 in the {header} header (got {values or 'none'}), "
        "so the download cannot be verified"
    )


def _download(url: str, dest: Path, f: DataFile) -> None:
    """Download ``url`` to ``dest`` through a temporary file; verified, then moved in place.

    On any failure the temporary file is removed and the exception propagates.
    """
    headers = {"User-Agent": "dl-notes-helpers"}
    if f.first_bytes is not None:
        headers["Range"] = f"bytes=0-{f.first_bytes - 1}"
    open_url, recorder = urllib.request.urlopen, None
    if f.sha256_header is not None:  # only then are the headers on the way needed
        recorder = _HeaderRecorder(f.sha256_header)
        open_url = urllib.request.build_opener(recorder).open
    dest.parent.mkdir(parents=True, exist_ok=True)
    # What a killed download of this file left behind (up to 1.9 GB for TinyStories).
    remove_stale_parts(dest.parent, f".{f.name}.", older_than_s=STALE_PART_S)
    with replacing(dest, prefix=f".{f.name}.") as tmp:
        request = urllib.request.Request(url, headers=headers)
        with (
            open(tmp, "wb") as out,
            open_url(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
        ):
            published = None
            if recorder is not None:
                final = response.headers.get(recorder.header)
                seen = recorder.seen + ([final] if final is not None else [])
                published = _published_sha256(url, recorder.header, seen)
            limit = f.first_bytes  # a server may ignore Range: then read only the prefix
            total = int(response.headers.get("Content-Length") or 0) or None
            if limit is not None:
                total = min(total or limit, limit)
            got = 0
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f.name
            ) as bar:
                while chunk := response.read(_CHUNK if limit is None else min(_CHUNK, limit - got)):
                    out.write(chunk)
                    bar.update(len(chunk))
                    got += len(chunk)
        _verify(tmp, f, "", expected=published, stamp=False)  # the temporary name
        if published is not None:  # the record first: a file is never left unverifiable
            write_atomically(sidecar(dest), f"{published}  {f.name}\n")
    info = dest.stat()  # renamed, not rewritten: the size and mtime that were hashed
    if info.st_size >= VERIFY_ONCE_BYTES:
        write_atomically(verified_stamp(dest), _stamp_text(published or f.sha256 or "", info))


def _mismatch_note(url: str, err: CorruptDatasetError) -> str:
    note = f"checksum mismatch (expected sha256 {err.expected}, got {err.actual})"
    if (urlsplit(url).hostname or "").endswith("gutenberg.org"):
        note += (
            "; gutenberg.org serves the newest edition of each book, so this most likely means "
            "a newer edition than the one these notes use, not a corrupt download"
        )
    return note


# --------------------------------------------------------------------------- fetch


def _locate(ds: Dataset, f: DataFile) -> Path:
    """The verified path of one file: first place that has it, else a download."""
    places = _candidates(ds, f)
    for label, path in places:
        if path is not None and path.is_file():
            _verify(path, f, _what_to_do(label, path))
            return path

    dest = cache_dir() / ds.folder / f.name
    failures = []
    for url in f.urls:
        try:
            _download(url, dest, f)
            return dest
        except CorruptDatasetError as e:
            failures.append(f"{url}: {_mismatch_note(url, e)}")
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{url}: {type(e).__name__}: {e}")

    looked = "\n".join(
        f"  - {label}: " + (f"{path.absolute()} (not found)" if path else "(NB_DATA is not set)")
        for label, path in places
    )
    tried = "\n".join(f"  - {line}" for line in failures) or "  (no URLs registered)"
    raise DatasetNotFoundError(
        f"Dataset {ds.name!r}: file {f.name!r} was not found and could not be downloaded.\n"
        f"Looked in:\n{looked}\n"
        f"Tried downloading (into {dest}):\n{tried}\n"
        f"To work offline, set NB_DATA to a copy of the offline data mirror, e.g. "
        f"`export NB_DATA=/path/to/shared/data`, so that the file is at "
        f"$NB_DATA/{ds.folder}/{f.name}."
    )


def fetch(name: str, files: Iterable[str] | None = None) -> dict[str, Path]:
    """Verified local paths of a dataset's files, by file name (all files, or ``files``).

    Looks in the offline mirror, the cache and system locations, and downloads what is
    missing (see the module docstring). Raises `CorruptDatasetError` for a damaged file and
    `DatasetNotFoundError` when a file is nowhere and every URL fails.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    ds = DATASETS[name]
    wanted = [ds.file(n) for n in files] if files is not None else list(ds.files)
    return {f.name: _locate(ds, f) for f in wanted}


# --------------------------------------------------------------------------- images


class ImageSet(NamedTuple):
    """Images as uint8 (N, 28, 28), pixel values 0..255, and their uint8 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray


_SPLITS = {"train": "train", "test": "t10k"}


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one gzipped IDX file (big-endian int32 header, then uint8 data)."""
    raw = gzip.decompress(path.read_bytes())
    ndim = magic & 0xFF
    header = np.frombuffer(raw, ">i4", count=1 + ndim)
    if header[0] != magic:
        raise ValueError(f"{path}: IDX magic number {header[0]}, expected {magic}")
    shape = tuple(int(n) for n in header[1:])
    offset = 4 * (1 + ndim)
    if len(raw) - offset != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, but holds {len(raw) - offset} bytes")
    # A copy, so that the array is writable (torch.from_numpy warns on read-only buffers).
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(shape).copy()


def _load_idx(name: str, split: str) -> ImageSet:
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(_SPLITS)}")
    prefix = _SPLITS[split]
    img_file, lbl_file = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    paths = fetch(name, [img_file, lbl_file])
    images = _read_idx(paths[img_file], 2051)
    labels = _read_idx(paths[lbl_file], 2049)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(
            f"{name} {split}: images {images.shape} do not match labels {labels.shape}"
        )
    return ImageSet(images, labels)


def load_mnist(split: str = "train") -> ImageSet:
    """MNIST handwritten digits: 60,000 train or 10,000 test images with labels 0-9."""
    return _load_idx("mnist", split)


def load_fashion_mnist(split: str = "train") -> ImageSet:
    """Fashion-MNIST: 60,000 train or 10,000 test clothing images, labels 0-9.

    Label ``i`` is the class ``FASHION_MNIST_CLASSES[i]``.
    """
    return _load_idx("fashion-mnist", split)


# --------------------------------------------------------------------------- text


def _decode(raw: bytes) -> str:
    """UTF-8 text without a byte-order mark and with LF line endings."""
    return raw.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")


def _strip_blank_lines(text: str) -> str:
    """Drop leading and trailing blank lines (keeping the first line's indentation)."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


# The markers may span two lines ("... EBOOK THE COMPLETE WORKS OF WILLIAM\nSHAKESPEARE ***").
_PG_START = re.compile(
    r"^\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG EBOOK[^*]*\*\*\*", re.M | re.I
)
_PG_END = re.compile(r"^\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG EBOOK", re.M | re.I)
# The last paragraph of the body: "End of (the) Project Gutenberg('s) ..." (one or two lines).
_PG_END_LINE = re.compile(
    r"^End of (?:the )?Project Gutenberg(?:'s|’s)?\b[^\n]*(?:\n[ \t]*\S[^\n]*)*\Z", re.M | re.I
)
# A transcriber credit right after the START marker, e.g. "Produced by Anonymous Volunteers".
_PG_PRODUCED_BY = re.compile(r"\A\s*Produced by[^\n]*(?:\n[ \t]*\S[^\n]*)*")
# pg100 appends a note about its copyright status to the end of the body.
_PG_CONTENT_NOTE = re.compile(
    r"^\* CONTENT NOTE \(added in 2017\) \*$.*?^\* END CONTENT NOTE \*$", re.M | re.S
)


def _strip_gutenberg(text: str, source: Path) -> str:
    """The body of a Project Gutenberg book, without its licence header and footer."""
    start = _PG_START.search(text)
    end = _PG_END.search(text, start.end() if start else 0)
    if start is None or end is None:
        missing = "START" if start is None else "END"
        raise ValueError(
            f"{source}: no '*** {missing} OF THE PROJECT GUTENBERG EBOOK ... ***' marker found; "
            "this does not look like the Project Gutenberg file the registry describes"
        )
    body = text[start.end() : end.start()]
    body = _PG_CONTENT_NOTE.sub("", body).rstrip()
    body = _PG_END_LINE.sub("", body)
    body = _PG_PRODUCED_BY.sub("", body)
    return _strip_blank_lines(body)


def load_text(name: str) -> str:
    """A text corpus as one string: UTF-8 decoded, BOM removed, CRLF turned into LF.

    ``name`` is one of `TEXTS`. Project Gutenberg books come without Gutenberg's header,
    footer and licence, so that a language model learns the book and not the boilerplate.
    """
    if name not in TEXTS:
        raise ValueError(f"unknown text {name!r}; valid names: {', '.join(TEXTS)}")
    (path,) = fetch(name).values()
    text = _decode(path.read_bytes())
    if TEXTS[name]:
        text = _strip_gutenberg(text, path)
    return _strip_blank_lines(text)


_EOT = "<|endoftext|>"


#: Parts accepted by `load_tinystories`: the offline sample and the two canonical files.
TINYSTORIES_PARTS: dict[str, tuple[str, str]] = {
    "sample": ("tinystories-sample", "TinyStories-train-sample-2MiB.txt"),
    "train": ("tinystories", "TinyStories-train.txt"),
    "valid": ("tinystories", "TinyStories-valid.txt"),
}


def _split_stories(lines: Iterable[str], limit: int | None) -> list[str]:
    """Stories separated by lines holding only ``<|endoftext|>``: stripped, empty ones dropped,
    at most ``limit`` of them (read lazily, so a large file is read only as far as needed)."""
    stories: list[str] = []
    story: list[str] = []
    for line in chain(lines, [_EOT]):  # a separator at the end closes the last story
        if line.rstrip("\r\n").rstrip(" \t") != _EOT:
            story.append(line)
            continue
        if text := "".join(story).strip():
            stories.append(text)
            if limit is not None and len(stories) >= limit:
                break
        story = []
    return stories


def load_tinystories(part: str = "sample", max_stories: int | None = None) -> list[str]:
    """TinyStories as a list of complete stories, in file order.

    ``part`` is ``"sample"`` (the offline mirror's 2 MiB sample of the training file, 2,316
    stories), ``"train"`` (the canonical training file: 1.9 GB, about 2.1 million stories) or
    ``"valid"`` (the canonical validation file: about 22,000). ``max_stories`` keeps the first
    ones only, and the file is read no further than needed. Stories are separated by lines
    holding only ``<|endoftext|>``; the sample is a byte-range cut, so whatever follows its last
    separator is a partial story and is dropped.
    """
    if part not in TINYSTORIES_PARTS:
        valid = ", ".join(TINYSTORIES_PARTS)
        raise ValueError(f"unknown TinyStories part {part!r}; valid: {valid}")
    if max_stories is not None and max_stories < 1:
        raise ValueError(f"max_stories must be positive, got {max_stories}")
    dataset, file = TINYSTORIES_PARTS[part]
    try:
        path = fetch(dataset, [file])[file]
    except DatasetNotFoundError as e:
        if part == "sample":
            raise
        raise DatasetNotFoundError(
            f"{e}\n\nThe full TinyStories files come only from Hugging Face (no mirror holds "
            f"them). Without network, use the offline sample instead: the notebook parameter "
            f'`tinystories = "sample"`, or `-p tinystories sample` with `python -m helpers.run`.'
        ) from None
    if part != "sample":
        with open(path, encoding="utf-8-sig") as fh:  # universal newlines: CRLF becomes LF
            return _split_stories(fh, max_stories)
    raw = path.read_bytes()
    # Cut before decoding: the 2 MiB boundary may fall inside a multi-byte UTF-8 character.
    complete, sep, _partial = raw.rpartition(_EOT.encode())
    if not sep:
        raise ValueError(f"{path}: no {_EOT} separator found")
    return _split_stories(io.StringIO(_decode(complete)), max_stories)


# --------------------------------------------------------------------------- tabular


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """The diabetes regression set: 442 patients, 10 features, a disease-progression target.

    It is bundled inside scikit-learn (no download, nothing to verify beyond its shape), and
    stands in for the Boston housing data that scikit-learn 1.2 removed. The features come
    centred and scaled to unit norm per column; the target is in its original units.
    Returns ``(X, y)`` as float64 arrays of shapes (442, 10) and (442,).
    """
    from sklearn.datasets import load_diabetes as bundled  # imported late: sklearn is heavy

    features, target = bundled(return_X_y=True)
    if features.shape != (442, 10) or target.shape != (442,):
        raise ValueError(f"scikit-learn's diabetes set has shape {features.shape}, "
                         f"{target.shape}; expected (442, 10), (442,)")
    return features.astype(np.float64), target.astype(np.float64)


class RegressionSplit(NamedTuple):
    """A train/test split, standardised with the training part's statistics only."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    #: the training target's mean and standard deviation, to go back to original units
    y_mean: float
    y_std: float


def diabetes_split(test_fraction: float = 0.2, seed: int = 0) -> RegressionSplit:
    """The diabetes set split at random (``seed``) and standardised for training.

    Features and target are centred and scaled with the means and standard deviations of the
    training rows alone, so nothing about the test rows leaks into training (scikit-learn
    ships the features scaled with statistics of all 442 rows; standardising again undoes
    that affine map). A mean squared error of 1 is then what predicting the training mean
    achieves. Chapters 1 and 4 use the same split (the default seed).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    X, y = load_diabetes()
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = round(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    x_mean, x_std = X[train].mean(0), X[train].std(0)
    y_mean, y_std = float(y[train].mean()), float(y[train].std())
    return RegressionSplit((X[train] - x_mean) / x_std, (y[train] - y_mean) / y_std,
                           (X[test] - x_mean) / x_std, (y[test] - y_mean) / y_std, y_mean, y_std)
