"""output_lock: one writer per output; a second fails at once naming the holder, or waits; a dead one blocks no one."""

from __future__ import annotations

import os
import time

import pytest

from helpers import in_child
from hf_embed.output_lock import OutputLockedError, lock_path, output_lock

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="holds the lock in a forked process")


def hold_in_child(output, release):
    """Fork a process that holds the lock of `output` until the file `release` exists; its pid once it holds it."""
    held = release.with_name("held")
    pid = os.fork()
    if pid == 0:
        try:
            with output_lock(output):
                held.touch()
                while not release.exists():
                    time.sleep(0.01)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while not held.exists():
        assert time.monotonic() < deadline, "the child never took the lock"
        time.sleep(0.01)
    return pid


@pytest.mark.slow
def test_a_second_holder_fails_naming_the_first_or_waits(tmp_path):
    output, release = tmp_path / "out.bin", tmp_path / "release"
    pid = hold_in_child(output, release)
    try:
        lock = tmp_path / ".out.bin.lock"
        assert lock_path(output) == str(lock)
        message = (
            f"{output} is being written by another writer (pid {pid}, holding the lock {lock}); "
            "wait until it has finished, or write to another output"
        )
        with pytest.raises(OutputLockedError) as failed:
            with output_lock(output):
                pass
        assert str(failed.value) == message
        start = time.monotonic()
        with pytest.raises(OutputLockedError):
            with output_lock(output, timeout=0.3):
                pass
        assert time.monotonic() - start >= 0.3  # it waited before giving up
        release.touch()
        with output_lock(output, timeout=60) as target:  # waits until the holder is done
            assert target == str(output) and lock.read_text() == f"{os.getpid()}\n"
    finally:
        release.touch()
        os.waitpid(pid, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held", "release"]  # the holder removed its lock file


def test_a_dead_holder_blocks_no_one(tmp_path):
    output = tmp_path / "out.bin"

    def die_holding():
        with output_lock(output):
            os._exit(17)  # no cleanup: the lock file stays, the kernel drops the lock

    assert in_child(die_holding) == 17
    assert (tmp_path / ".out.bin.lock").exists()  # left behind, unlocked
    with output_lock(output):  # at once
        pass
    assert list(tmp_path.iterdir()) == []


def test_threads_hold_it_apart(tmp_path):
    """flock belongs to an open file, not a process: a second `with` in the same process is a second writer."""
    with output_lock(tmp_path / "x.bin"):
        with pytest.raises(OutputLockedError, match=rf"pid {os.getpid()}"):
            with output_lock(tmp_path / "x.bin"):
                pass
