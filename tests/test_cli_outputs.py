"""The command line's outputs (and `tokenize_files`'s): never an input, published whole, nothing left on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import make_text
from hf_embed import HfEmbedModel, atomic_write
from hf_embed.cli import main
from hf_embed.tokenize_corpus import tokenize_dataset, tokenize_files


def test_tokenize_refuses_to_write_over_its_input(tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text(make_text(200), encoding="utf-8")
    before = text.read_bytes()
    (tmp_path / "link.txt").symlink_to(text)
    for output, which in [(text, "one of the inputs"), (tmp_path / "link.txt", f"the input {text} (a link)")]:
        assert main(["tokenize", str(text), "--output", str(output)]) == 1
        assert capsys.readouterr().err == (
            f"hf-embed tokenize: error: the output {output} is {which}: writing it would destroy that input; "
            "choose another output path\n"
        )
    assert text.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "link.txt"]


def test_tokenize_never_replaces_a_file_that_is_not_a_token_file(tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text(make_text(200), encoding="utf-8")
    notes = tmp_path / "b.txt"  # not an input, but a user's file all the same
    notes.write_text("my notes", encoding="utf-8")
    assert main(["tokenize", str(text), "--output", str(notes)]) == 1
    assert capsys.readouterr().err == (
        f"hf-embed tokenize: error: {notes}: exists and is not a token file (8 bytes), and tokenizing would replace "
        "it; remove it or choose another path\n"
    )
    assert notes.read_text(encoding="utf-8") == "my notes"
    with pytest.raises(FileExistsError, match=r"b\.txt: exists and is not a token file"):  # the library says the same
        tokenize_files([text], notes)
    assert notes.read_text(encoding="utf-8") == "my notes"
    index = tmp_path / "pair.idx"  # a Megatron prefix whose .idx is someone else's file
    index.write_text("not an index", encoding="utf-8")
    assert main(["tokenize", str(text), "--format", "megatron", "--output", str(tmp_path / "pair")]) == 1
    assert f"{index}: exists and is not part of a Megatron pair (12 bytes)" in capsys.readouterr().err
    assert index.read_text(encoding="utf-8") == "not an index" and not (tmp_path / "pair.bin").exists()
    data = tmp_path / "solo.bin"  # a .bin without an index, and no writer of hf-embed's died writing it
    data.write_bytes(b"\x00" * 10)
    assert main(["tokenize", str(text), "--format", "megatron", "--output", str(tmp_path / "solo")]) == 1
    assert f"{data}: exists and is not part of a Megatron pair (10 bytes)" in capsys.readouterr().err
    assert data.read_bytes() == b"\x00" * 10


@pytest.mark.slow
def test_tokenize_replaces_a_token_file_or_an_empty_file(tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text(make_text(200), encoding="utf-8")
    first = tokenize_files([text], tmp_path / "tokens.bin")
    (tmp_path / "empty.bin").touch()
    for output in ("tokens.bin", "empty.bin"):  # a token file, or an empty file, is replaced
        assert main(["tokenize", str(text), "--output", str(tmp_path / output)]) == 0
        assert f"{first['count']:,} uint16 tokens" in capsys.readouterr().out


@pytest.mark.slow
def test_tokenize_files_checks_a_generator_of_inputs_without_using_it_up(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text(make_text(200), encoding="utf-8")
    before = text.read_bytes()
    output = tmp_path / "tokens.bin"
    first = tokenize_files(tmp_path.glob("*.txt"), output)
    assert tokenize_files(tmp_path.glob("*.txt"), output)["count"] == first["count"] > 0  # over an existing output
    with pytest.raises(ValueError, match="is one of the inputs"):
        tokenize_files((p for p in [text]), text)
    assert text.read_bytes() == before


@pytest.mark.slow
def test_init_publishes_model_and_tokenizer_together(tmp_path, monkeypatch):
    output = tmp_path / "model"
    steps: list[str] = []
    monkeypatch.setattr(atomic_write, "fault_hook", steps.append)
    assert main(["init", "--preset", "book-ch2", "--seed", "1", "--output", str(output)]) == 0
    assert steps.count("renamed") == 1  # one publication for both
    assert {"synced model.safetensors", "synced tokenizer.json", "synced config.json"} <= set(steps)
    first = HfEmbedModel.from_pretrained(output).embeddings.wte.weight

    def fail_before_the_swap(step: str) -> None:
        if step == "synced":  # the second init's model and tokenizer are staged and synced, not yet published
            raise OSError("disk gone")

    monkeypatch.setattr(atomic_write, "fault_hook", fail_before_the_swap)
    (output / "tokenizer.json").unlink()  # so that a tokenizer in the folder can only be the second init's
    assert main(["init", "--preset", "book-ch2", "--seed", "2", "--force", "--output", str(output)]) == 1
    assert torch.equal(HfEmbedModel.from_pretrained(output).embeddings.wte.weight, first)
    assert not (output / "tokenizer.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell may start background jobs with SIGINT ignored


@pytest.mark.slow
def test_signals_end_the_command_with_one_line_and_nothing_half_written(tmp_path):
    """SIGINT and SIGTERM, each sent to an `hf-embed tokenize` (run side by side) while it writes its output."""
    text = tmp_path / "big.txt"
    text.write_text(make_text(20_000) * 100, encoding="utf-8")  # about 12 MB: seconds of tokenizing on one thread
    expected = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}
    command = [sys.executable, "-m", "hf_embed.cli", "tokenize", str(text), "--threads", "1", "--output"]
    processes = {
        signum: subprocess.Popen(
            [*command, str(tmp_path / f"{word}.bin")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,
        )
        for signum, (_, word) in expected.items()
    }
    try:
        deadline, waiting = time.monotonic() + 180, set(expected)
        while waiting:
            for signum in list(waiting):
                word, process = expected[signum][1], processes[signum]
                if any(p.name.startswith(f".{word}") for p in tmp_path.iterdir()):  # it is writing
                    process.send_signal(signum)
                    waiting.remove(signum)
                assert process.poll() is None or signum not in waiting, f"{word}: ended before the signal"
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.002)
        for signum, (code, word) in expected.items():
            out, err = processes[signum].communicate(timeout=120)
            assert (processes[signum].returncode, err, out) == (code, f"hf-embed tokenize: {word}\n", "")
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt"]


def test_a_json_beside_a_file_does_not_make_it_a_token_file(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text(make_text(50), encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes", encoding="utf-8")
    (tmp_path / "notes.txt.json").write_text("{}", encoding="utf-8")  # not a version-1 token-file header
    with pytest.raises(FileExistsError, match=r"notes\.txt: exists and is not a token file \(8 bytes\)"):
        tokenize_files([text], notes)
    with pytest.raises(FileExistsError, match=r"notes\.txt: exists and is not a token file"):
        tokenize_dataset([{"text": "hello world"}], notes)
    assert notes.read_text(encoding="utf-8") == "my notes"
