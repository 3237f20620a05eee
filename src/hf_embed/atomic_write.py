"""Publishing outputs on disk: whole or not at all, one writer at a time.

Every writer in hf-embed (`save_pretrained`, the CLI's model and tokenizer folders, token files, embeddings,
pictures) goes through this module. What it promises, for a file or a folder (a saved model: weights,
config, code, tokenizer):

- **Whole.** A crash at any instant leaves the complete previous output or the complete new one, never a
  mix. Data is flushed (`fsync`) before the rename that publishes it, and the folder that holds the name
  after it.
- **One writer.** A writer holds `.NAME.lock` beside the output for the whole write (`output_lock.py`; the
  kernel drops it when the process dies). A second writer fails at once with an `OutputLockedError` naming
  the output, the lock file and the holder's pid, or waits up to `timeout` seconds.
- **No litter.** Temporaries carry the output's name and the writer's pid (`.NAME.tmp-PID.SUFFIX` for a
  file, `.NAME.saving-PID-RANDOM` for a folder). The next writer of the same output removes those a dead
  writer left: holding the lock proves that no other writer of that output is alive, because every writer
  takes the lock before it makes a temporary.

How a folder is replaced. The new folder is staged beside the old one, files the save does not write are
carried over (hard links, or copies where the filesystem has none), every file and folder in it is
fsynced, and then the two names are exchanged in one atomic step: `renameat2(RENAME_EXCHANGE)` on Linux
(glibc >= 2.28, kernel >= 3.15), `renamex_np(RENAME_SWAP)` on macOS. The staging name then holds the old
generation, which is deleted. Why a swap of the whole folder rather than the alternatives:

- moving files in one by one (what hf-embed did before) leaves new weights beside an old config when
  the writer dies between two moves;
- a manifest written last, or a symlink to the current generation, would need every reader to know
  about it, and readers are transformers, `AutoTokenizer`, the Hub client, `ls`: the output stays an
  ordinary folder that any tool reads.

Where no exchange exists (another OS, or a filesystem that refuses it), the old folder is renamed aside
(`.NAME.old-PID-RANDOM`) and the new one renamed in. A crash between those two renames leaves no folder
under the name: the next writer, or a reader through `read_folder_consistently`, renames the aside copy
back, so the complete previous output returns.

Readers. transformers opens `config.json` and the weights by path, one after the other, so a reader can
race a swap and read the config of one generation and the weights of the next.
`read_folder_consistently` holds the folder open while it reads (so its inode cannot be reused) and
checks afterwards that the name still refers to it; if a save was published meanwhile it reads again.

Limits. Symbolic links are followed: `save_pretrained("latest")` with `latest -> run-3` replaces `run-3`.
Ownership, extended attributes and ACLs of a replaced folder are not carried over (its permission bits
are). A process whose working directory is inside the replaced folder keeps the old generation.
`fsync` on macOS does not flush the drive's own cache (`F_FULLFSYNC` would).

This file imports only the standard library and `output_lock`: `save_pretrained` copies both next to the weights.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from .output_lock import OutputLockedError, lock_path, output_lock  # re-exported: they were defined here

logger = logging.getLogger(__name__)

#: Fault injection for tests: called with the name of each step of a write, in order. A hook that
#: raises, or ends the process (`os._exit`), at step k shows what a crash there leaves behind.
fault_hook: Callable[[str], None] | None = None

# Folders being staged by this process: a save into one of them (the model and the tokenizer of one CLI
# output) writes straight in, and the enclosing write publishes them together.
_staging_folders: set[str] = set()


def _reached(step: str) -> None:
    if fault_hook is not None:
        fault_hook(step)


def _resolve(path) -> str:
    return os.path.realpath(os.fspath(path))


# -------------------------------------------------------------------------------- temporaries, recovery


def temporary_path(path) -> str:
    """`.NAME.tmp-PID.SUFFIX` beside `path`: where `write_file_atomically` has `write` write.

    The suffix is kept so that tools that look at it (`numpy.save` appends `.npy` otherwise) still do.

    Args:
        path: the output (a symbolic link is followed).

    Returns:
        The temporary's path, in the output's folder.
    """
    target = _resolve(path)
    stem, suffix = os.path.splitext(os.path.basename(target))
    return os.path.join(os.path.dirname(target), f".{stem}.tmp-{os.getpid()}{suffix}")


def _new_temporary_folder(target: str, kind: str) -> str:
    return os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
    )


def _temporaries(target: str) -> tuple[list[str], list[str]]:
    """What writers of `target` leave beside it while they work: (temporaries, old generations set aside)."""
    parent, name = os.path.split(target)
    stem, suffix = os.path.splitext(name)
    temporary = re.compile(
        rf"\.{re.escape(stem)}\.tmp-\d+{re.escape(suffix)}|\.{re.escape(name)}\.saving-[\w-]+", re.ASCII
    )
    aside = re.compile(rf"\.{re.escape(name)}\.old-\d+-[0-9a-f]+", re.ASCII)
    temporaries, asides = [], []
    with os.scandir(parent) as entries:
        for entry in entries:
            if temporary.fullmatch(entry.name):
                temporaries.append(entry.path)
            elif aside.fullmatch(entry.name):
                asides.append(entry.path)
    return temporaries, asides


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _recover(target: str) -> None:
    """Under the lock: put back an output a dead writer left set aside, and remove what dead writers left."""
    temporaries, asides = _temporaries(target)
    if asides and not os.path.lexists(target):
        newest = max(asides, key=lambda p: os.lstat(p).st_ctime_ns)
        os.rename(newest, target)
        _fsync_folder(os.path.dirname(target))
        logger.warning("%s: restored the previous output, which an interrupted save had set aside", target)
        asides.remove(newest)
    for path in temporaries + asides:
        logger.info("%s: removing what an interrupted writer left: %s", target, os.path.basename(path))
        _remove(path)


# ----------------------------------------------------------------------------------------- durability


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: str) -> None:
    if os.name == "nt":  # a folder cannot be opened there; NTFS journals its own metadata
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # filesystems without folder fsync
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: str, linked: set[str]) -> None:
    """fsync every file, then every folder (deepest first), of `root`; not the files in `linked`, hard links
    to files of the published output (their data is where it was; the new names are in the folders)."""
    for folder, _folders, files in os.walk(root, topdown=False):
        for name in sorted(files):
            path = os.path.join(folder, name)
            if path not in linked and not os.path.islink(path):
                _fsync_file(path)
                _reached(f"synced {os.path.relpath(path, root)}")
        _fsync_folder(folder)


# --------------------------------------------------------------------------------------- the exchange

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # Linux <linux/fs.h>
_RENAME_SWAP = 2  # macOS <stdio.h>
_exchange_function: Any = None  # the C function (a ctypes pointer); False where there is none; None: not looked up


def _exchange(a: str, b: str) -> bool:
    """Swap the names `a` and `b` in one atomic step. False where this system or filesystem cannot."""
    global _exchange_function
    if _exchange_function is None:
        function: Any
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if sys.platform.startswith("linux"):
                function = libc.renameat2
                function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            elif sys.platform == "darwin":
                function = libc.renamex_np
                function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
            else:
                function = False
        except (OSError, AttributeError):  # no such call in this C library (glibc < 2.28, musl, ...)
            function = False
        _exchange_function = function
    if _exchange_function is False:
        return False
    if sys.platform == "darwin":
        result = _exchange_function(os.fsencode(a), os.fsencode(b), _RENAME_SWAP)
    else:
        result = _exchange_function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):  # old kernel; filesystem refuses
        return False
    raise OSError(code, os.strerror(code), a, None, b)


def _publish(staging: str, target: str, aside: str) -> None:
    """Put the complete, synced `staging` folder under `target`; the old generation ends under `staging`
    (exchanged) or `aside` (fallback)."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        _reached("renamed")
    elif _exchange(staging, target):
        _reached("swapped")
    else:
        os.rename(target, aside)
        try:
            _reached("moved aside")
            os.rename(staging, target)
        except BaseException:
            os.rename(aside, target)  # put the previous output back; a crash right here is what `_recover` mends
            raise
        _reached("moved in")


# -------------------------------------------------------------------------------------------- writers


def write_file_atomically(path, write: Callable[[str], object], *, timeout: float = 0.0) -> None:
    """Publish one file whole: `write(temporary)` beside `path`, fsync it, rename it onto `path`, fsync the folder.

    Args:
        path: the file to create or replace (a symbolic link is followed).
        write: called with the temporary path (same folder, same suffix), which it must create.
        timeout: seconds to wait for another writer of `path`; 0 fails at once.

    Raises:
        OutputLockedError: another writer is writing `path`.
        IsADirectoryError: `path` is a folder.
    """
    target = _resolve(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(target):
        raise IsADirectoryError(f"{target}: is a folder, not a file")
    with output_lock(target, timeout=timeout):
        _recover(target)
        _reached("locked")
        temporary = temporary_path(target)
        try:
            write(temporary)
            _reached("written")
            if not os.path.isfile(temporary):
                raise FileNotFoundError(f"{temporary}: the writer did not create it")
            _fsync_file(temporary)
            _reached("synced")
            os.replace(temporary, target)
            _reached("renamed")
            _fsync_folder(os.path.dirname(target))
            _reached("published")
        finally:
            _remove(temporary)


_WEIGHTS = re.compile(r"(pytorch_)?model([.-].*)?\.(safetensors|bin)(\.index(\.[\w-]+)?\.json)?")


def _carry_over(target: str, staging: str) -> set[str]:
    """Bring into `staging` what `target` holds and the write did not produce, but no stale weights.

    Returns the paths made as hard links (the others are copies: filesystems without hard links)."""
    linked: set[str] = set()

    def _link_or_copy(source: str, destination: str) -> str:
        try:
            os.link(source, destination, follow_symlinks=False)
            linked.add(destination)
        except OSError:
            shutil.copy2(source, destination, follow_symlinks=False)
        return destination

    written = set(os.listdir(staging))
    new_weights = any(_WEIGHTS.fullmatch(name) for name in written)
    with os.scandir(target) as entries:
        for entry in entries:
            if entry.name in written or (new_weights and _WEIGHTS.fullmatch(entry.name)):
                continue
            destination = os.path.join(staging, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), destination)
            elif entry.is_dir():
                shutil.copytree(entry.path, destination, symlinks=True, copy_function=_link_or_copy)
            else:
                _link_or_copy(entry.path, destination)
            _reached(f"carried {entry.name}")
    return linked


def write_folder_atomically(folder, write: Callable[[str], object], *, timeout: float = 0.0) -> None:
    """Publish a folder whole: `write(staging)` into a new folder beside `folder`, then swap it in at once.

    Files already in `folder` that `write` does not produce (a tokenizer beside a model, a README) are
    kept, except weight files when `write` writes weights (no stale shards of an earlier save). See the
    module docstring for the steps and why.

    Args:
        folder: the folder to create or replace (a symbolic link is followed).
        write: called with the staging folder (empty, already created), which it fills.
        timeout: seconds to wait for another writer of `folder`; 0 fails at once.

    Raises:
        OutputLockedError: another writer is writing `folder`.
        NotADirectoryError: `folder` is a file.
    """
    target = _resolve(folder)
    if target in _staging_folders:  # part of a bigger output being staged: published with it
        os.makedirs(target, exist_ok=True)
        write(target)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target) and not os.path.isdir(target):
        raise NotADirectoryError(f"{target}: exists and is not a folder")
    with output_lock(target, timeout=timeout):
        _recover(target)
        _reached("locked")
        staging = _new_temporary_folder(target, "saving")
        aside = _new_temporary_folder(target, "old")
        os.mkdir(staging)
        _staging_folders.add(staging)
        try:
            write(staging)
            _reached("written")
            linked = set()
            if os.path.isdir(target):
                linked = _carry_over(target, staging)
                os.chmod(staging, stat.S_IMODE(os.stat(target).st_mode))  # the folder keeps its permissions
            _fsync_tree(staging, linked)
            _reached("synced")
            _publish(staging, target, aside)
            _fsync_folder(os.path.dirname(target))
            _reached("published")
        finally:
            _staging_folders.discard(staging)
            _remove(staging)  # the previous generation, or the unfinished new one
            if os.path.lexists(target):
                _remove(aside)


# -------------------------------------------------------------------------------------------- readers


def read_folder_consistently(folder, read: Callable[[], object], *, attempts: int = 10):
    """Run `read()` (which reads files of `folder` by path) and make sure no save was published meanwhile.

    The folder is held open while `read` runs, so its inode cannot be reused, and afterwards its name must
    still lead to it; otherwise a writer swapped in a new generation (some files may have come from each)
    and `read` runs again. Where a save without an atomic exchange was interrupted between its two renames,
    the previous output is first put back (under the writer's lock). Anything that is not a local folder
    is read once, as it is.

    Args:
        folder: the folder `read` reads.
        read: the reading, called without arguments; its result is returned.
        attempts: how many swaps to tolerate before giving up.

    Returns:
        What `read()` returned.

    Raises:
        RuntimeError: `folder` was replaced during each of `attempts` reads.
    """
    try:
        target = _resolve(folder)
        if not os.path.lexists(target) and _temporaries(target)[1]:
            _restore_set_aside(target)
    except (OSError, TypeError, ValueError):  # not a local path (a Hub id, say)
        return read()
    for _ in range(attempts):
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:  # not a folder, or one that cannot be opened (Windows): read it as it is
            return read()
        try:
            pinned = os.fstat(fd)
            try:
                result = read()
            except Exception:
                if _same_folder(target, pinned):
                    raise
                result = _SWAPPED
            if result is not _SWAPPED and _same_folder(target, pinned):
                return result
        finally:
            os.close(fd)
        logger.info("%s: a new save was published while it was being read; reading it again", target)
        if not os.path.lexists(target):
            _restore_set_aside(target)
    raise RuntimeError(f"{target}: replaced by a new save during each of {attempts} reads; try again")


_SWAPPED = object()


def _same_folder(target: str, pinned: os.stat_result) -> bool:
    try:
        now = os.stat(target)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (pinned.st_dev, pinned.st_ino)


def _restore_set_aside(target: str, wait: float = 5.0) -> None:
    """A reader found no folder but an old generation set aside: a writer is between its two renames, or died."""
    deadline = time.monotonic() + wait
    while not os.path.lexists(target) and time.monotonic() < deadline:
        try:
            with output_lock(target):
                _recover(target)
        except OutputLockedError:  # a live writer: it puts the new folder in place within moments
            time.sleep(0.01)
        except PermissionError:  # a reader that may not write there cannot repair it
            return


# -------------------------------------------------------------------------------------------- inputs


def check_output_is_not_an_input(output, inputs: Iterable) -> None:
    """Refuse to write `output` when it is one of `inputs`, also through a hard or symbolic link.

    Call it before reading anything: writing the output would destroy the input being read.

    Args:
        output: the path to be written.
        inputs: the paths to be read.

    Raises:
        ValueError: `output` and an input are the same file.
    """
    if not os.path.exists(output):
        return
    for source in inputs:
        try:
            same = os.path.samefile(source, output)
        except (OSError, TypeError, ValueError):
            continue
        if same:
            which = "one of the inputs" if os.fspath(source) == os.fspath(output) else f"the input {source} (a link)"
            raise ValueError(
                f"the output {output} is {which}: writing it would destroy that input; choose another output path"
            )


__all__ = [
    "OutputLockedError",
    "check_output_is_not_an_input",
    "lock_path",
    "output_lock",
    "read_folder_consistently",
    "temporary_path",
    "write_file_atomically",
    "write_folder_atomically",
]
