"""One writer per output: the lock beside it, held for the whole write.

A writer holds `.NAME.lock` beside the output (`flock`, or `msvcrt.locking` on Windows; the kernel drops it when
the process dies, so a dead writer never blocks anyone). A second writer fails at once with an
`OutputLockedError` naming the output, the lock file and the holder's pid, or waits up to `timeout` seconds.
The holder removes the lock file when it is done. Holding the lock also proves that no other writer of that
output is alive, which is what lets `atomic_write` remove the temporaries a dead writer left.

This file imports only the standard library: `save_pretrained` copies it next to the weights (through
`atomic_write`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator

# In try/except, not `if sys.platform`: transformers' remote-code loader ignores imports inside try/except and
# requires every other one to be installed, so an `import msvcrt` it can see fails every load on Linux and macOS.
try:
    import fcntl
except ImportError:  # Windows
    import msvcrt


class OutputLockedError(OSError):
    """Another writer holds the output's lock.

    Args:
        message: the output, the lock file and the holder's pid.
    """


def lock_path(path) -> str:
    """The lock file of output `path`: `.NAME.lock` beside it.

    Args:
        path: the output (a symbolic link is followed).

    Returns:
        The lock file's path.
    """
    target = os.path.realpath(os.fspath(path))
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.lock")


def _try_lock(fd: int) -> bool:
    try:
        if sys.platform != "win32":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK):
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if sys.platform != "win32":
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _holder(lock: str) -> str:
    try:
        with open(lock, encoding="ascii") as f:
            pid = f.read(32).strip()
    except (OSError, ValueError):
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "pid unknown"


@contextlib.contextmanager
def output_lock(path, *, timeout: float = 0.0) -> Iterator[str]:
    """Hold the writer's lock of output `path` (a file or a folder) for the duration of a `with` block.

    Args:
        path: the output; symbolic links are followed.
        timeout: seconds to wait for another writer to finish; 0 fails at once.

    Returns:
        A context manager that yields the resolved output path.

    Raises:
        OutputLockedError: another process (or thread) holds the lock for longer than `timeout`.
    """
    target = os.path.realpath(os.fspath(path))
    lock = lock_path(target)
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if _try_lock(fd):
                # The holder we waited for deletes the file before it unlocks: if the name no longer leads
                # to the file we locked, lock the new one instead.
                try:
                    current = os.stat(lock)
                except FileNotFoundError:
                    current = None
                mine = os.fstat(fd)
                if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                    break
                _unlock(fd)
            elif time.monotonic() >= deadline:
                raise OutputLockedError(
                    f"{target} is being written by another writer ({_holder(lock)}, holding the lock {lock}); "
                    "wait until it has finished, or write to another output"
                )
            else:
                time.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield target
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock)  # while still locked: a waiter that opened it sees it gone and retries
        _unlock(fd)
        os.close(fd)


__all__ = ["OutputLockedError", "lock_path", "output_lock"]
