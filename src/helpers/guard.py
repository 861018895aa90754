"""Papermill under watch: if the runner that started it dies, nothing of the run survives.

    python -m helpers.guard RUNNER_PID SCRATCH_DIR PAPERMILL_ARGUMENT ...

The runner (:mod:`helpers.run`) starts papermill through this module, in a session of its
own. Papermill runs in this very process; a thread checks a few times a second that the
parent is still the runner. When the runner is gone (killed with SIGKILL, say, which it
cannot catch) the thread stops every process below this one (the kernel runs in a session
of its own, out of reach of a process-group kill), removes the run's scratch folder and
ends the process. The runner stops the tree itself when it is interrupted or a notebook runs
past its timeout (:func:`stop_tree`).
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import threading

import psutil

POLL_S = 0.2


def stop_tree(pid: int, grace_s: float = 5.0) -> None:
    """Stop a process and everything below it: SIGTERM to all, SIGKILL to what lingers.

    The descendants are listed before anything is signalled: once a parent is gone its
    children are adopted elsewhere and can no longer be found from it.
    """
    try:
        top = psutil.Process(pid)
        processes = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    _signal_all(processes, grace_s)


def stop_descendants(grace_s: float = 5.0) -> None:
    """Stop every process below this one."""
    _signal_all(psutil.Process().children(recursive=True), grace_s)


def _signal_all(processes: list[psutil.Process], grace_s: float) -> None:
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=grace_s)


def _watch(parent: int, scratch: str, finished: threading.Event) -> None:
    while os.getppid() == parent:
        if finished.wait(POLL_S):
            return
    # The runner is gone: no one will read this run's output. (Papermill, in the main
    # thread, may end meanwhile when it sees its kernel die; the interpreter waits for
    # this thread, which is not a daemon, to finish the cleanup.)
    stop_descendants(grace_s=2.0)
    shutil.rmtree(scratch, ignore_errors=True)
    os._exit(1)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or not argv[0].isdigit():
        sys.exit("usage: python -m helpers.guard RUNNER_PID SCRATCH_DIR PAPERMILL_ARGUMENT ...")
    runner, scratch, papermill_args = int(argv[0]), argv[1], argv[2:]
    finished = threading.Event()
    # The runner's pid, not os.getppid() read here: the runner may already be gone.
    threading.Thread(target=_watch, args=(runner, scratch, finished)).start()
    sys.argv = ["papermill", *papermill_args]
    try:
        runpy.run_module("papermill", run_name="__main__", alter_sys=True)
    finally:
        finished.set()


if __name__ == "__main__":
    main(sys.argv[1:])
