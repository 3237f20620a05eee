"""atomic_write: outputs published whole, one writer at a time, no litter left; readers never see a mix.

Crashes are simulated two ways: a fault-injection hook that ends a forked writer (`os._exit`, no cleanup)
at each step of the mechanism in turn, and SIGKILL at random moments of a writer saving in a loop. After
each, the folder must load with `from_pretrained` and be one whole generation: config, weights and the
tokenizer file of the same save.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from helpers import in_child
from hf_embed import HfEmbedConfig, HfEmbedModel, atomic_write
from hf_embed import modeling_hf_embed as modeling
from hf_embed.atomic_write import (
    OutputLockedError,
    check_output_is_not_an_input,
    output_lock,
    write_file_atomically,
    write_folder_atomically,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="simulates crashes in forked writers")

IDS = torch.arange(14).reshape(2, 7) * 7 % 99


@pytest.fixture(autouse=True, scope="module")
def no_progress_bars():
    """transformers' progress bars share one multiprocessing lock across fork: a writer killed while it held
    that lock would hang the next bar in this process."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    yield
    if enabled:
        hf_logging.enable_progress_bar()


class Generation:
    """One save: a model and the tokenizer file saved beside it. A and B have tensors of the same names and
    shapes, so only the checks here (not a shape error) tell a mix of the two apart."""

    def __init__(self, name: str, seed: int, position_embedding_type: str):
        torch.manual_seed(seed)
        config = HfEmbedConfig.from_preset("tiny", position_embedding_type=position_embedding_type)
        self.name, self.model = name, HfEmbedModel(config).eval()
        with torch.no_grad():
            self.output = self.model(IDS).last_hidden_state

    def save(self, folder: Path, **options) -> None:
        def write(staging: str) -> None:  # model and tokenizer published together, as `hf-embed init` does
            self.model.save_pretrained(staging)
            Path(staging, "tokenizer.json").write_text(self.name)

        write_folder_atomically(folder, write, **options)


@pytest.fixture(scope="module")
def generations() -> dict[str, Generation]:
    return {"A": Generation("A", 0, "sinusoidal"), "B": Generation("B", 1, "none")}


def whole_generation(folder: Path, generations: dict[str, Generation], *, together: bool = True) -> str:
    """The name of the generation `folder` holds, asserting that every part of it is from that one save.

    `together`: model and tokenizer file are read in one `read_folder_consistently` (as a reader that loads
    both from a folder being saved to must); otherwise only `from_pretrained`'s own check guards the model.
    """

    def read():
        model = HfEmbedModel.from_pretrained(folder).eval()
        return model, (folder / "tokenizer.json").read_text(), (folder / "notes.txt").read_text()

    model, tokenizer, notes = atomic_write.read_folder_consistently(folder, read) if together else read()
    assert notes == "kept", "a file the saves do not write must be carried over"
    with torch.no_grad():
        output = model(IDS).last_hidden_state
    for g in generations.values():
        scheme = g.model.config.position_embedding_type
        if torch.equal(output, g.output) and model.config.position_embedding_type == scheme:
            assert tokenizer == g.name, f"{g.name}'s model beside {tokenizer}'s tokenizer"
            return g.name
    raise AssertionError(f"{folder}: config {model.config.position_embedding_type!r} and weights of no one save")


def leftovers(parent: Path, keep=("model",)) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


@pytest.fixture
def folder(tmp_path, generations) -> Path:
    folder = tmp_path / "model"
    generations["A"].save(folder)
    (folder / "notes.txt").write_text("kept")
    return folder


@pytest.fixture(params=["exchange", "fallback"])
def swap(request, monkeypatch) -> str:
    """Both ways of replacing a folder: the atomic exchange, and rename aside + rename in (other systems)."""
    if request.param == "exchange":
        assert sys.platform != "linux" or atomic_write._exchange_function is not False, "renameat2 not found"
    else:
        monkeypatch.setattr(atomic_write, "_exchange", lambda a, b: False)
    return request.param


def at_step(k: int, action):
    """A fault hook that calls `action(step)` at the k-th step (from 0) of the next write."""
    counter = itertools.count()

    def hook(step: str) -> None:
        if next(counter) == k:
            action(step)

    return hook


def interrupt(step: str):
    raise KeyboardInterrupt(step)


def steps_of(save, monkeypatch) -> list[str]:
    steps: list[str] = []
    monkeypatch.setattr(atomic_write, "fault_hook", steps.append)
    save()
    monkeypatch.setattr(atomic_write, "fault_hook", None)
    return steps


@pytest.mark.slow
def test_crash_at_every_step_leaves_the_old_or_the_new_folder(folder, generations, swap, monkeypatch):
    steps = steps_of(lambda: generations["B"].save(folder), monkeypatch)
    published = steps.index("swapped" if swap == "exchange" else "moved in")
    assert "carried notes.txt" in steps and "synced model.safetensors" in steps and len(steps) > 10
    generations["A"].save(folder)
    for k, step in enumerate(steps):
        monkeypatch.setattr(atomic_write, "fault_hook", at_step(k, lambda _: os._exit(17)))  # no cleanup, no finally
        assert in_child(lambda: generations["B"].save(folder)) == 17, step
        monkeypatch.setattr(atomic_write, "fault_hook", None)
        expected = "B" if k >= published else "A"
        assert whole_generation(folder, generations) == expected, f"crash at {step!r}"
        generations["A"].save(folder)  # the next writer gets the lock and removes what the dead one left
        assert leftovers(folder.parent) == [], f"after a crash at {step!r}"


@pytest.mark.slow
def test_failure_at_every_step_cleans_up(folder, generations, swap, monkeypatch):
    steps = steps_of(lambda: generations["B"].save(folder), monkeypatch)
    published = steps.index("swapped" if swap == "exchange" else "moved in")
    for k, step in enumerate(steps):
        generations["A"].save(folder)
        monkeypatch.setattr(atomic_write, "fault_hook", at_step(k, interrupt))
        with pytest.raises(KeyboardInterrupt):
            generations["B"].save(folder)
        monkeypatch.setattr(atomic_write, "fault_hook", None)
        assert whole_generation(folder, generations) == ("B" if k >= published else "A"), step
        assert leftovers(folder.parent) == [], f"the writer left litter after failing at {step!r}"


@pytest.mark.slow
@pytest.mark.parametrize("trials", [12])
def test_sigkill_at_random_moments(folder, generations, swap, trials):
    rng = random.Random(0)
    seen = {"A": 0, "B": 0, "killed mid-save": 0}

    def save_forever():
        for name in itertools.cycle("BA"):
            generations[name].save(folder)

    for _ in range(trials):
        pid = os.fork()
        if pid == 0:
            try:
                save_forever()
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.25))  # a tiny save takes 30-100 ms here, most of it in fsync
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen["killed mid-save"] += bool(leftovers(folder.parent))
        seen[whole_generation(folder, generations)] += 1
    generations["A"].save(folder)
    assert leftovers(folder.parent) == []
    assert seen["killed mid-save"] > 0, seen  # the kills did land inside saves
    print(seen)


def test_first_save_and_permissions(tmp_path, generations):
    folder = tmp_path / "new" / "model"
    generations["B"].save(folder)
    assert HfEmbedModel.from_pretrained(folder).config.position_embedding_type == "none"
    os.chmod(folder, 0o750)
    generations["A"].save(folder)
    assert (folder.stat().st_mode & 0o777) == 0o750  # the replaced folder keeps its permission bits
    assert leftovers(folder.parent) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="exists and is not a folder"):
        generations["A"].save(tmp_path / "file")


def test_stale_weights_go_other_files_stay(folder, generations):
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"old shard")
    (folder / "model.safetensors.index.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"old pickle")
    (folder / "extra").mkdir()
    (folder / "extra" / "data.txt").write_text("deep")
    generations["B"].save(folder)
    names = sorted(p.name for p in folder.iterdir())
    assert "model-00001-of-00002.safetensors" not in names and "pytorch_model.bin" not in names
    assert "model.safetensors.index.json" not in names and (folder / "extra" / "data.txt").read_text() == "deep"
    assert whole_generation(folder, generations) == "B"


def test_a_save_published_during_a_load_is_read_whole(folder, generations, monkeypatch):
    """transformers reads config.json, then the weights: a swap in between would mix two saves."""
    real = HfEmbedConfig.from_pretrained.__func__
    swaps = []

    def read_config_then_swap(cls, *args, **kwargs):
        config = real(cls, *args, **kwargs)
        if not swaps:  # a writer publishes B right after this reader read A's config
            swaps.append(1)
            generations["B"].save(folder)
        return config

    monkeypatch.setattr(HfEmbedConfig, "from_pretrained", classmethod(read_config_then_swap))
    assert whole_generation(folder, generations, together=False) == "B"
    assert swaps == [1]
    # The same race without the check mixes the two saves (A's position scheme, B's weights): the test sees it.
    generations["A"].save(folder)
    swaps.clear()
    monkeypatch.setattr(modeling, "read_folder_consistently", lambda folder, read: read())
    with pytest.raises(AssertionError, match="weights of no one save"):
        whole_generation(folder, generations, together=False)


@pytest.mark.slow
def test_loads_during_saves_are_whole(folder, generations):
    pid = os.fork()
    if pid == 0:
        try:
            for name in itertools.cycle("BA"):
                generations[name].save(folder)
        finally:
            os._exit(0)
    try:
        seen = {whole_generation(folder, generations) for _ in range(25)}
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert seen <= {"A", "B"}


# Writers in other processes load this module and its one sibling from their folder alone, as a flat package (as
# remote code is loaded): nothing else of hf-embed, which is fast.
WRITER = textwrap.dedent(
    """
    import importlib, os, sys, time, types
    flat = types.ModuleType("flat")
    flat.__path__ = [os.path.dirname(sys.argv[1])]
    sys.modules["flat"] = flat
    atomic_write = importlib.import_module("flat.atomic_write")
    output, content, hold, timeout, repeat = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6])

    def write(path):
        with open(path, "w") as f:
            f.write(content * repeat)
        print("writing", flush=True)
        while hold != "-" and not os.path.exists(hold):
            time.sleep(0.01)

    try:
        atomic_write.write_file_atomically(output, write, timeout=timeout)
    except atomic_write.OutputLockedError as error:
        print(f"failed: {error}", flush=True)
        sys.exit(3)
    print("done", flush=True)
    """
)


def writer(output: Path, content: str, hold: Path | None = None, timeout: float = 0.0, repeat: int = 1):
    arguments = [atomic_write.__file__, str(output), content, str(hold or "-"), str(timeout), str(repeat)]
    command = [sys.executable, "-c", WRITER, *arguments]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_second_writer_fails_clearly_or_waits(tmp_path):
    output, hold = tmp_path / "out.txt", tmp_path / "hold"
    first = writer(output, "first", hold)
    try:
        assert first.stdout.readline() == "writing\n"
        second = writer(output, "second")
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 3
        lock = tmp_path / ".out.txt.lock"
        assert out.strip() == (
            f"failed: {output} is being written by another writer (pid {first.pid}, holding the lock {lock}); "
            "wait until it has finished, or write to another output"
        )
        assert not output.exists() and (tmp_path / f".out.tmp-{first.pid}.txt").exists()  # the live one's temporary
        waiting = writer(output, "third", timeout=60)
        time.sleep(0.3)
        assert waiting.poll() is None  # waits for the first writer
        hold.touch()
        assert first.communicate(timeout=60)[0] == "done\n"
        assert waiting.communicate(timeout=60)[0] == "writing\ndone\n"
    finally:
        for process in (first,):
            process.kill()
            process.wait()
    assert output.read_text() == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hold", "out.txt"]  # no lock file, no temporary


def test_threads_are_writers_too(tmp_path):
    with output_lock(tmp_path / "x.bin"):
        with pytest.raises(OutputLockedError, match=rf"pid {os.getpid()}"):
            write_file_atomically(tmp_path / "x.bin", lambda path: Path(path).write_bytes(b"x"))


def test_temporaries_of_dead_writers_are_removed_by_the_next(tmp_path):
    output, hold = tmp_path / "tokens.bin", tmp_path / "never"
    dead = writer(output, "x", hold, repeat=5_000_000)
    assert dead.stdout.readline() == "writing\n"
    dead.kill()
    dead.wait()
    other = tmp_path / ".other.tmp-1.bin"  # another output's temporary: not ours to remove
    other.write_text("")
    (tmp_path / ".tokens.bin.saving-12-ab").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert f".tokens.tmp-{dead.pid}.bin" in before and ".tokens.bin.lock" in before
    write_file_atomically(output, lambda path: Path(path).write_text("new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-1.bin", "tokens.bin"]
    assert output.read_text() == "new"


def test_a_file_write_that_fails_leaves_the_old_file(tmp_path):
    output = tmp_path / "e.npy"
    output.write_text("old")

    def fail(path):
        Path(path).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_file_atomically(output, fail)
    assert output.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["e.npy"]
    with pytest.raises(FileNotFoundError, match="the writer did not create it"):
        write_file_atomically(output, lambda path: None)
    with pytest.raises(IsADirectoryError):
        write_file_atomically(tmp_path, lambda path: None)


def test_an_output_that_is_an_input_is_refused(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("some text")
    (tmp_path / "hard.txt").hardlink_to(text)
    (tmp_path / "soft.txt").symlink_to(text)
    check_output_is_not_an_input(tmp_path / "new.bin", [text])
    check_output_is_not_an_input(tmp_path / "other.txt", [text, tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match=rf"the output {text} is one of the inputs: writing it would destroy"):
        check_output_is_not_an_input(text, [tmp_path / "x.txt", text])
    for alias in ("hard.txt", "soft.txt"):
        with pytest.raises(ValueError, match=rf"the output {tmp_path / alias} is the input {text} \(a link\)"):
            check_output_is_not_an_input(tmp_path / alias, [str(text)])
    assert text.read_text() == "some text"
