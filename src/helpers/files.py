"""Writing files so that no reader ever sees half of one, and a lock for writers that share a
folder.

A file is written to a temporary file in its own folder, flushed to disk, and renamed onto
its final name. A rename within one file system is atomic: a reader (or a process that
starts after a crash) finds either the old file or the new one, never a truncated mix. The
temporary file gets the mode a plain ``open(path, "w")`` would give (the umask applies), so
a folder shared between users stays usable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PART_SUFFIX = ".part"
LOCK_NAME = ".runner.lock"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replacing(path: Path, *, prefix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``path``; when the block ends without an error it is flushed
    to disk and renamed onto ``path``, and on any error (an interrupt too) it is removed.

    The block writes the temporary file by name (e.g. a download streamed into it).
    ``prefix`` names it ``<prefix>XXXX.part`` (default ``.<name>.``), so that leftovers of a
    process that was killed can be recognised (see :func:`remove_stale_parts`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=PART_SUFFIX,
                                dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())  # the data is on disk before the name points to it
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def write_atomically(path: Path, content: str | bytes) -> None:
    """Replace ``path`` by ``content`` (text is written as UTF-8) in one atomic step."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with replacing(path) as temporary:
        temporary.write_bytes(data)


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entry for the renamed file (POSIX; a no-op where unsupported)."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_parts(folder: Path, prefix: str, older_than_s: float) -> list[Path]:
    """Remove ``<prefix>*.part`` files in ``folder`` not written to for ``older_than_s``
    seconds: what a killed writer left behind. A writer still at work touches its file
    continually, so it is left alone. Returns what was removed."""
    removed = []
    now = time.time()
    for part in folder.glob(f"{_glob_escape(prefix)}*{PART_SUFFIX}"):
        try:
            if now - part.stat().st_mtime > older_than_s:
                part.unlink()
                removed.append(part)
        except FileNotFoundError:  # another process cleaned it first
            continue
    return removed


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


@contextlib.contextmanager
def locked(*folders: Path, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive lock on each folder (a ``.runner.lock`` file in it) for the block.

    Writers that must not interleave take the same locks; folders are locked in a fixed
    order, so two writers never wait for each other in a circle. If a lock is held
    elsewhere, ``waiting`` (when given) is printed once before blocking. The operating
    system releases the locks when the process ends, however it ends.
    """
    with contextlib.ExitStack() as stack:
        for folder in sorted({Path(f).resolve() for f in folders}):
            folder.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context(open(folder / LOCK_NAME, "a+b"))
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting:
                    print(waiting.format(folder=folder), flush=True)
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            stack.callback(fcntl.flock, handle.fileno(), fcntl.LOCK_UN)
        yield
