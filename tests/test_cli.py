"""The `hf-embed` command: the demo (the README's main job) and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from helpers import make_text, write_text
from hf_embed.cli import SAMPLE_TEXT, main
from hf_embed.token_files import read_header


def _worked_row(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:+.4f}" for v in values.tolist()) + ", ...]"


@pytest.mark.slow
def test_demo_runs_offline_on_embedded_text(tmp_path, capsys, monkeypatch):
    """The walk-through prints the tutorial's own numbers, each computed here again from torch."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = tmp_path / "demo"
    assert main(["demo", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "first batch inputs (8, 4)" in printed
    assert "token embeddings: (8, 4) -> (8, 4, 256)" in printed
    assert "token + position embeddings: (8, 4) -> (8, 4, 256)" in printed
    assert "identical embeddings and token ids" in printed
    model = AutoModel.from_pretrained(output).eval()
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert model.config.hidden_size == 256 and model.config.max_position_embeddings == 4
    assert tokenizer.model_max_length == 4  # the saved tokenizer carries the model's real limit
    ids = tokenizer(SAMPLE_TEXT, add_special_tokens=False, verbose=False)["input_ids"]
    assert len(tokenizer) == 50257

    # the book's small table and the lookup of token 3, exactly as torch prints them
    torch.manual_seed(123)
    small = torch.nn.Embedding(6, 3)
    assert f"torch.manual_seed(123); torch.nn.Embedding(6, 3).weight:\n{small.weight}\n" in printed
    row3 = str(small(torch.tensor([3])))
    assert row3 == "tensor([[-0.4015,  0.9666, -1.1481]], grad_fn=<EmbeddingBackward0>)"  # the tutorial's row
    assert f"embedding(torch.tensor([3])) =\n{row3}\n" in printed
    with torch.no_grad():
        one_hot = torch.nn.functional.one_hot(torch.tensor([3]), 6).float() @ small.weight
    assert f"one_hot(3, 6) @ weight =\n{one_hot}\n   equal to row 3: True" in printed

    # text -> ids, windows and their shifted targets
    assert f"text: {len(SAMPLE_TEXT)} characters -> {len(ids)} GPT-2 token ids" in printed
    assert f"{ids[1]:>6} {tokenizer.decode([ids[1]])!r}" in printed
    for w in range(3):
        window, target = ids[4 * w : 4 * w + 4], ids[4 * w + 1 : 4 * w + 5]
        assert f"window {w}: ids[{4 * w}:{4 * w + 4}] = {window}  {tokenizer.decode(window)!r}" in printed
        assert f"target {w}: ids[{4 * w + 1}:{4 * w + 5}] = {target}  {tokenizer.decode(target)!r}" in printed
    inputs = torch.tensor([ids[4 * b : 4 * b + 4] for b in range(8)])
    targets = torch.tensor([ids[4 * b + 1 : 4 * b + 5] for b in range(8)])
    assert f"first batch inputs (8, 4):\n{inputs}\n" in printed and f"\n{targets}\n" in printed

    # the seeded book setup (seed 123, then nn.Embedding(50257, 256)), and the worked sums of step 6
    torch.manual_seed(123)
    assert torch.equal(model.embeddings.wte.weight, torch.nn.Embedding(50257, 256).weight)
    with torch.no_grad():
        tokens = model.embeddings.wte.weight[inputs]  # (8, 4, 256)
        positions = model.embeddings.wpe.weight[:4]  # (4, 256)
        output = model(inputs).last_hidden_state
    assert torch.equal(output, tokens + positions)
    for b in (0, 1):
        assert f"{_worked_row(tokens[b, 0, :3])}   wte(inputs)[{b}, 0]" in printed
        assert f"   + position row 0       {_worked_row(positions[0, :3])}   wpe(arange(4))[0]" in printed
        assert f"   = output row           {_worked_row(output[b, 0, :3])}   output[{b}, 0]" in printed
    assert "(8, 4, 256) it broadcasts" in printed.replace("\n   ", " ")
    sum_line = "The tutorial's worked sum: token row [0.5, -0.2, 0.1] + position row [0.1, 0.3, -0.1] = [0.6, 0.1, 0.0]"
    assert sum_line in printed
    assert "50304 = 786 x 64" in printed and "-> (50304, 256): rows 0..50256 unchanged (True)" in printed.replace(
        "\n   ", " "
    )


@pytest.mark.slow
def test_demo_with_text_file_and_quiet(tmp_path, capsys):
    from hf_embed import gpt2_tokenizer

    text_file = tmp_path / "story.txt"
    text_file.write_text("Ein kleiner Text über Bücher und Straßen. " * 10, encoding="utf-8")
    assert main(["demo", "--quiet", "--text-file", str(text_file), "--output", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    text = text_file.read_text(encoding="utf-8")
    n = len(gpt2_tokenizer()(text)["input_ids"])
    windows = len(range(0, n - 4, 4))  # the book's windows: i in range(0, len(ids) - max_length, stride)
    assert lines[0] == f"text: {len(text)} characters -> {n} GPT-2 token ids"
    assert lines[1] == (
        f"dataloader: {windows} windows, {-(-windows // 8)} batches (drop_last=False: the last, smaller batch is "
        "kept; create_dataloader drops it by default); first batch inputs (8, 4):"
    )
    assert lines[2].startswith("tensor([[") and len(lines) == 13  # the short summary: 8 rows of ids
    assert lines[10:] == [
        "token embeddings: (8, 4) -> (8, 4, 256)",
        "token + position embeddings: (8, 4) -> (8, 4, 256)",
        f"saved to {tmp_path / 'out'}/ and reloaded with AutoModel/AutoTokenizer: identical embeddings and token ids",
    ]


@pytest.mark.slow
def test_demo_replaces_only_a_previous_demo_without_force(tmp_path, capsys):
    output = tmp_path / "demo"
    assert main(["demo", "--quiet", "--output", str(output)]) == 0
    assert main(["demo", "--quiet", "--output", str(output)]) == 0  # its own previous output: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    capsys.readouterr()
    assert main(["demo", "--quiet", "--output", str(mine)]) == 1
    assert capsys.readouterr().err == (
        f"hf-embed demo: error: --output {mine}: exists and is not empty (notes.txt); pass --force to replace its "
        "model and tokenizer with the demo's\n"
    )
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert main(["demo", "--quiet", "--force", "--output", str(mine)]) == 0
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "mine"  # files the save does not write are kept
    book = tmp_path / "book"  # a model of the demo's sizes, made by init (or trained): not a demo's folder
    assert main(["init", "--preset", "book-ch2", "--output", str(book)]) == 0
    weights = (book / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["demo", "--quiet", "--output", str(book)]) == 1
    assert "exists and is not empty (arguments.py, atomic_write.py, config.json, " in capsys.readouterr().err
    assert (book / "model.safetensors").read_bytes() == weights


def test_a_bare_tokenizer_name_that_is_no_folder_is_refused_at_once(tmp_path, capsys, monkeypatch):
    text = tmp_path / "a.txt"
    text.write_text("hello world", encoding="utf-8")
    for argv in (
        ["tokenize", str(text), "--output", str(tmp_path / "o.bin"), "--tokenizer", "my-tokenizr"],
        ["init", "--preset", "tiny", "--tokenizer", "my-tokenizr", "--output", str(tmp_path / "m")],
    ):
        assert main(argv) == 1
        assert capsys.readouterr().err == (
            f"hf-embed {argv[0]}: error: --tokenizer my-tokenizr: no such folder ('gpt2' is built in; a tokenizer on "
            "the Hub is named 'org/name')\n"
        )
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ("my-tokenizr/", "runs/tokenizr"):  # a trailing slash, or a first part that is a folder: local
        argv = ["tokenize", str(text), "--output", str(tmp_path / "o.bin"), "--tokenizer", name]
        assert main(argv) == 1
        assert capsys.readouterr().err == f"hf-embed tokenize: error: --tokenizer {name}: no such folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "runs"]


def test_failure_is_one_line_with_exit_1(tmp_path, capsys):
    text_file = tmp_path / "latin1.txt"
    text_file.write_bytes("caf\xe9 ".encode("latin-1") * 50)
    assert main(["demo", "--text-file", str(text_file), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"hf-embed demo: error: {text_file}: not valid UTF-8 at byte 3"
    short = tmp_path / "short.txt"
    short.write_text("Too short.", encoding="utf-8")
    assert main(["demo", "--text-file", str(short), "--output", str(tmp_path / "out")]) == 1
    assert "too few for one window" in capsys.readouterr().err


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_console_script_is_installed(tmp_path):
    """The README's main-job command, as a user runs it, from a fresh folder."""
    executable = shutil.which("hf-embed") or str(Path(sys.executable).with_name("hf-embed"))
    result = subprocess.run(
        [executable, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_offline_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hf-embed-demo" / "model.safetensors").is_file()


def _offline_env(tmp_path):
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    return env


def test_every_subcommand_has_help(capsys):
    commands = ["demo", "init", "embed", "inspect", "resize", "push", "plot-positions", "plot-tokens", "tokenize"]
    for command in [*commands, "train-tokenizer"]:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: hf-embed {command}" in capsys.readouterr().out


@pytest.mark.slow
def test_init_embed_inspect(tmp_path, capsys):
    from safetensors.torch import load_file

    from hf_embed import HfEmbedModel

    folder = tmp_path / "model"
    args = ["init", "--preset", "gpt2", "--position-embedding-type", "sinusoidal", "--output", str(folder)]
    assert main(args) == 0
    assert "50257 x 768 tokens, sinusoidal positions up to 1024" in capsys.readouterr().out
    assert (folder / "tokenizer.json").is_file() and (folder / "model.safetensors").is_file()

    out = tmp_path / "e.safetensors"
    assert main(["embed", str(folder), "--text", "Hello world, hello embeddings", "--output", str(out)]) == 0
    assert "input_ids (1, 7) -> embeddings (1, 7, 768)" in capsys.readouterr().out
    saved = load_file(out)
    model = HfEmbedModel.from_pretrained(folder).eval()
    assert torch.equal(saved["embeddings"], model(saved["input_ids"]).last_hidden_state)
    assert main(["embed", str(folder), "--text", "x", "--output", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (1, 1, 768)
    long_text = "word " * 2000
    assert main(["embed", str(folder), "--text", long_text, "--output", str(out)]) == 1
    assert "2001 tokens, more than max_position_embeddings (1024); pass --truncate" in capsys.readouterr().err
    assert main(["embed", str(folder), "--text", long_text, "--output", str(out), "--truncate"]) == 0
    capsys.readouterr()

    with torch.no_grad():  # make ' queen' (id 16599) the nearest neighbour of ' king' (id 5822)
        model.embeddings.wte.weight[16599] = model.embeddings.wte.weight[5822] + 0.001
    model.save_pretrained(folder)
    assert main(["inspect", str(folder), "--token", " king", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "positions:  sinusoidal, max 1024" in printed and "parameters: 38,597,376" in printed
    lines = printed.strip().splitlines()
    assert lines[6] == "tokenizer:  50257 ids, bos 50256, eos 50256, pad 50256, model_max_length 1024"
    assert lines[7] == "nearest to ' king' (id 5822) by cosine similarity:" and len(lines) == 11
    assert lines[8].split()[1:] == ["16599", "'", "queen'"] and lines[8].split()[0].startswith("+0.99")
    assert main(["inspect", str(folder), "--token", "unbelievably"]) == 1
    assert "'unbelievably' is 4 tokens ['un', 'bel', 'iev', 'ably']" in capsys.readouterr().err

    model.resize_token_embeddings(pad_to_multiple_of=64)  # 50257 -> 50304 rows
    with torch.no_grad():  # a padding row nearer than any token: inspect must not offer it
        model.embeddings.wte.weight[50300] = model.embeddings.wte.weight[5822]
    model.save_pretrained(folder)
    assert main(["inspect", str(folder), "--token", " king", "--top", "1"]) == 0
    printed = capsys.readouterr().out
    assert "vocabulary: 50257 tokens, table padded to 50304 rows" in printed
    assert printed.strip().splitlines()[-1].split()[1] == "16599"


@pytest.mark.slow
def test_init_from_gpt2(tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64))
    gpt2.save_pretrained(tmp_path / "gpt2")
    assert main(["init", "--from-gpt2", str(tmp_path / "gpt2"), "--output", str(tmp_path / "m")]) == 0
    from hf_embed import HfEmbedModel

    model = HfEmbedModel.from_pretrained(tmp_path / "m")
    assert torch.equal(model.embeddings.wte.weight, gpt2.transformer.wte.weight)


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"hf-embed {version('hf-embed')} (torch {version('torch')}, transformers ")


def test_train_tokenizer_says_when_the_corpus_is_too_small(tmp_path, capsys):
    from transformers import AutoTokenizer

    corpus = tmp_path / "small.txt"
    corpus.write_text("hello world, hello tokenizer. " * 50, encoding="utf-8")
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "50000", "--output", str(tmp_path / "tok")]) == 0
    reached = len(AutoTokenizer.from_pretrained(tmp_path / "tok"))
    assert 258 <= reached < 300
    captured = capsys.readouterr()
    assert captured.err == (
        f"hf-embed train-tokenizer: warning: the corpus gave a vocabulary of {reached} tokens, not the 50000 asked "
        "for: no pair left occurs at least min_frequency=2 times (more text, or a lower min_frequency, gives more)\n"
    )
    assert captured.out == f"trained a byte-level BPE of {reached} tokens (asked for 50000) -> {tmp_path / 'tok'}/\n"
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "270", "--output", str(tmp_path / "t2")]) == 0
    assert capsys.readouterr().err == ""  # reached: no warning


def test_train_tokenizer_names_the_file_and_byte_it_cannot_read(tmp_path, capsys):
    good = tmp_path / "good.txt"
    good.write_text("plain text " * 20, encoding="utf-8")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("a caf\xe9 ".encode("latin-1") * 5)
    output = tmp_path / "tok"
    assert main(["train-tokenizer", str(good), str(latin1), "--vocab-size", "300", "--output", str(output)]) == 1
    assert capsys.readouterr().err == f"hf-embed train-tokenizer: error: {latin1}: not valid UTF-8 at byte 5\n"
    assert main(["train-tokenizer", str(tmp_path / "nope.txt"), "--vocab-size", "300", "--output", str(output)]) == 1
    assert capsys.readouterr().err == f"hf-embed train-tokenizer: error: {tmp_path / 'nope.txt'}: no such file\n"
    (tmp_path / "empty.txt").touch()
    assert main(["train-tokenizer", str(tmp_path / "empty.txt"), "--vocab-size", "300", "--output", str(output)]) == 1
    assert capsys.readouterr().err == (
        "hf-embed train-tokenizer: error: all 1 input files are empty: there is no text to learn a vocabulary from\n"
    )
    assert not output.exists()


def _no_loading(monkeypatch):
    """Make any model or tokenizer load fail the test: the checks must come first."""
    from hf_embed import HfEmbedModel
    from hf_embed.cli import common

    def refuse(*args, **kwargs):
        raise AssertionError("a model or tokenizer was loaded before the arguments were checked")

    monkeypatch.setattr(HfEmbedModel, "from_pretrained", refuse)
    monkeypatch.setattr(common, "load_tokenizer", refuse)
    monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", refuse)


def _tiny_tokenizer(folder: Path) -> Path:
    from hf_embed.tokenization import train_tokenizer_from_iterator

    train_tokenizer_from_iterator([SAMPLE_TEXT] * 3, vocab_size=300).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_init_takes_the_tokenizers_sizes_and_ids(tmp_path, capsys):
    from transformers import pipeline

    tokenizer_dir = _tiny_tokenizer(tmp_path / "tok")  # 300 ids, <|endoftext|> = 0
    folder = tmp_path / "m"
    args = ["init", "--preset", "gpt2", "--tokenizer", str(tokenizer_dir), "--max-positions", "4", "--output"]
    assert main([*args, str(folder)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{folder}/: 300 x 768 tokens, absolute positions up to 4, float32, ")
    assert f"tokenizer {tokenizer_dir}: 300 ids; bos 0, eos 0, pad 0; model_max_length 4" in printed
    model = AutoModel.from_pretrained(folder)
    c = model.config
    assert (c.vocab_size, c.bos_token_id, c.eos_token_id, c.pad_token_id) == (300, 0, 0, 0)
    assert AutoTokenizer.from_pretrained(folder).model_max_length == 4  # the model's real limit
    extractor = pipeline("feature-extraction", model=str(folder))
    features = extractor("a text much longer than four tokens, cut where the model must cut it", truncation=True)
    assert torch.tensor(features).shape == (1, 4, 768)

    padded = tmp_path / "padded"
    assert main(["init", "--preset", "book-ch2", "--vocab-size", "50304", "--output", str(padded)]) == 0
    assert "tokenizer gpt2: 50257 ids, rows 50257..50303 unused by the tokenizer" in capsys.readouterr().out
    padded_config = AutoModel.from_pretrained(padded).config
    assert (padded_config.vocab_size, padded_config.unpadded_vocab_size) == (50304, 50257)
    assert main(["inspect", str(padded)]) == 0
    assert "vocabulary: 50257 tokens, table padded to 50304 rows" in capsys.readouterr().out


def test_init_refuses_what_would_be_a_trap(tmp_path, capsys, monkeypatch):
    _no_loading(monkeypatch)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["init", "--preset", "tiny", "--output", str(folder)]) == 1
    assert capsys.readouterr().err == (
        f"hf-embed init: error: --output {folder}: exists and is not empty (notes.txt); pass --force to replace "
        "its model and tokenizer\n"
    )
    assert main(["init", "--tokenizer", str(tmp_path / "no-tok"), "--output", str(tmp_path / "x")]) == 1
    assert f"--tokenizer {tmp_path / 'no-tok'}: no such folder" in capsys.readouterr().err
    assert (
        main(["init", "--from-gpt2", str(tmp_path / "g"), "--hidden-size", "8", "--output", str(tmp_path / "x")]) == 1
    )
    assert "--hidden-size: the table sizes of --from-gpt2 are the checkpoint's" in capsys.readouterr().err
    for argv, message in [
        (["--preset", "nope"], "argument --preset: invalid choice: 'nope' (choose from 'bloom-560m', 'book-ch2'"),
        (["--hidden-size", "0"], "argument --hidden-size: 0 is less than 1"),
        (["--position-embedding-type", "alibi"], "argument --position-embedding-type: invalid choice: 'alibi'"),
        (["--dtype", "int8"], "argument --dtype: invalid choice: 'int8'"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["init", *argv, "--output", str(tmp_path / "x")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"] and [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_resize_and_train_tokenizer_never_write_into_a_non_empty_folder_without_force(tmp_path, capsys, monkeypatch):
    _no_loading(monkeypatch)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "hf_embed"}', encoding="utf-8")
    text = tmp_path / "a.txt"
    text.write_text(SAMPLE_TEXT, encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text("my other model", encoding="utf-8")
    for argv, replaces in [
        (["resize", str(model), "--max-positions", "8", "--output", str(mine)], "its model and tokenizer"),
        (["train-tokenizer", str(text), "--vocab-size", "300", "--output", str(mine)], "its tokenizer"),
    ]:
        assert main(argv) == 1
        assert capsys.readouterr().err == (
            f"hf-embed {argv[0]}: error: --output {mine}: exists and is not empty (config.json); pass --force to "
            f"replace {replaces}\n"
        )
    assert [p.name for p in mine.iterdir()] == ["config.json"]
    assert (mine / "config.json").read_text(encoding="utf-8") == "my other model"
    assert main(["train-tokenizer", str(text), "--vocab-size", "300", "--output", str(mine), "--force"]) == 0
    assert (mine / "tokenizer.json").is_file()
    assert (mine / "config.json").read_text(encoding="utf-8") == "my other model"


@pytest.mark.slow
def test_init_and_plot_positions_take_a_settings_file(tmp_path, capsys):
    import json

    from hf_embed import HfEmbedModel

    settings = tmp_path / "mine.json"
    settings.write_text(json.dumps({"hidden_size": 8, "max_position_embeddings": 12, "vocab_size": 50304}))
    folder = tmp_path / "m"
    assert main(["init", "--preset", str(settings), "--output", str(folder)]) == 0
    assert "50304 x 8 tokens, absolute positions up to 12" in capsys.readouterr().out
    config = HfEmbedModel.from_pretrained(folder).config
    assert (config.vocab_size, config.unpadded_vocab_size, config.eos_token_id) == (50304, 50257, 50256)
    settings.write_text(json.dumps({"hidden_size": 8, "vocab_size": 50257, "unpadded_vocab_size": 50000}))
    assert main(["init", "--preset", str(settings), "--output", str(folder), "--force"]) == 0
    assert HfEmbedModel.from_pretrained(folder).config.unpadded_vocab_size is None  # the tokenizer's 50257 ids all
    settings.write_text(json.dumps({"hidden_size": 8, "vocab_size": 1000}))
    assert main(["init", "--preset", str(settings), "--output", str(tmp_path / "small")]) == 1
    assert capsys.readouterr().err == (
        f"hf-embed init: error: {settings}: vocab_size 1000 is smaller than the tokenizer's 50257 ids: ids "
        "1000..50256 would have no row in the table; give at least 50257, or leave it out to take the tokenizer's "
        "size\n"
    )
    settings.write_text(json.dumps({"hidden_size": 8, "position_embedding_type": "rotary", "head_dim": 4}))
    assert main(["plot-positions", "--preset", str(settings), "--output", str(tmp_path / "p.svg")]) == 0
    assert "rotary: 1024 x 1024 cosine similarities of positions" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["init", "--preset", str(tmp_path / "nope.json"), "--output", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert f"argument --preset: {tmp_path / 'nope.json'}: no such config file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "mine.json", "p.svg"]


@pytest.mark.slow
def test_init_sizes_dtype_and_the_per_head_rotary_default(tmp_path, capsys):
    from hf_embed import HfEmbedModel

    cases = [
        (["--hidden-size", "128"], 64),  # 64 divides 128: one head's width
        (["--hidden-size", "96"], 96),  # 64 does not divide 96: the whole width
        (["--hidden-size", "96", "--head-dim", "32"], 32),
    ]
    for i, (options, head_dim) in enumerate(cases):
        folder = tmp_path / f"m{i}"
        args = ["init", "--preset", "tiny", "--position-embedding-type", "rotary", *options, "--output", str(folder)]
        assert main(args) == 0
        assert f"rotary positions up to 16 (head_dim {head_dim})" in capsys.readouterr().out
        model = HfEmbedModel.from_pretrained(folder)
        assert model.config.head_dim == head_dim
        _, (cos, _) = model(torch.tensor([[1, 2, 3]]), return_dict=False)[:2]
        assert cos.shape == (1, 3, head_dim)
    folder = tmp_path / "bf16"
    assert (
        main(["init", "--preset", "tiny", "--vocab-size", "50304", "--dtype", "bfloat16", "--output", str(folder)]) == 0
    )
    assert "50304 x 32 tokens, absolute positions up to 16, bfloat16" in capsys.readouterr().out
    model = HfEmbedModel.from_pretrained(folder)
    assert model.dtype == torch.bfloat16 and model.config.vocab_size == 50304
    assert main(["init", "--preset", "tiny", "--vocab-size", "99", "--output", str(tmp_path / "small")]) == 1
    assert capsys.readouterr().err == (
        "hf-embed init: error: --vocab-size 99 is smaller than the tokenizer's 50257 ids: ids 99..50256 would have "
        "no row in the table; give at least 50257, or leave it out to take the tokenizer's size\n"
    )
    assert main(["init", "--preset", "tiny", "--force", "--output", str(folder)]) == 0  # replaced
    assert HfEmbedModel.from_pretrained(folder).dtype == torch.float32


@pytest.mark.slow
def test_embed_lines_in_batches_with_pooling(tmp_path, capsys):
    from safetensors.torch import load_file

    from hf_embed import HfEmbedModel

    folder = tmp_path / "m"
    assert main(["init", "--preset", "tiny", "--output", str(folder)]) == 0
    lines = tmp_path / "lines.txt"
    texts = ["The keeper counted ships.", "", "One winter a ship came in without a name.", "Gone."]
    lines.write_text("\n".join(texts) + "\n", encoding="utf-8")
    model = HfEmbedModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    kept = [0, 2, 3]  # the blank line is skipped; rows keep their line numbers
    alone = [model(torch.tensor([tokenizer(texts[i])["input_ids"]])).last_hidden_state[0] for i in kept]
    capsys.readouterr()
    for pooling in ("none", "mean", "last"):
        out = tmp_path / f"{pooling}.safetensors"
        args = ["embed", str(folder), "--lines", str(lines), "--batch-size", "2", "--pooling", pooling]
        assert main([*args, "--output", str(out)]) == 0
        saved = load_file(out)
        assert saved["text_index"].tolist() == kept and saved["window_start"].tolist() == [0, 0, 0]
        lengths = saved["attention_mask"].sum(1).tolist()
        assert lengths == [len(a) for a in alone]
        for row, reference in enumerate(alone):
            n = lengths[row]
            assert saved["input_ids"][row, :n].tolist() == tokenizer(texts[kept[row]])["input_ids"]
            if pooling == "none":
                assert torch.equal(saved["embeddings"][row, :n], reference)
                assert not saved["embeddings"][row, n:].any()  # pads are zeros
            elif pooling == "mean":
                torch.testing.assert_close(saved["embeddings"][row], reference.mean(0), rtol=0, atol=1e-6)
            else:
                assert torch.equal(saved["embeddings"][row], reference[-1])
    printed = capsys.readouterr().out
    assert (
        f"3 texts (1 blank line skipped): input_ids (3, {max(lengths)}) -> embeddings (3, 32) float32, pooling last"
        in printed
    )
    npz = tmp_path / "e.npz"
    assert main(["embed", str(folder), "--text", "Hello", "--text", "world, again", "--output", str(npz)]) == 0
    with np.load(npz) as arrays:
        assert sorted(arrays) == ["attention_mask", "embeddings", "input_ids", "text_index", "window_start"]
        assert arrays["embeddings"].shape == (2, 3, 32) and arrays["attention_mask"].tolist() == [[1, 0, 0], [1] * 3]


@pytest.mark.slow
def test_embed_windows_over_a_long_text(tmp_path, capsys):
    from safetensors.torch import load_file

    from hf_embed import HfEmbedModel

    folder = tmp_path / "m"
    assert main(["init", "--preset", "tiny", "--output", str(folder)]) == 0  # 16 positions
    book = tmp_path / "book.txt"
    book.write_text(SAMPLE_TEXT, encoding="utf-8")
    ids = AutoTokenizer.from_pretrained(folder)(SAMPLE_TEXT)["input_ids"]
    out = tmp_path / "w.safetensors"
    assert main(["embed", str(folder), "--file", str(book), "--output", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"hf-embed embed: error: text 0 is {len(ids)} tokens, more than max_position_embeddings (16); pass "
        "--truncate to keep the first 16 or --stride N to embed it in windows of 16\n"
    )
    assert main(["embed", str(folder), "--file", str(book), "--stride", "8", "--output", str(out)]) == 0
    saved = load_file(out)
    starts = saved["window_start"].tolist()
    assert starts == list(range(0, len(ids) - 16 + 8, 8))[: len(starts)] and starts[-1] + 16 >= len(ids)
    assert starts[-2] + 16 < len(ids)  # the last window is the first that reaches the end
    model = HfEmbedModel.from_pretrained(folder).eval()
    for row, start in enumerate(starts):
        window = ids[start : start + 16]
        assert saved["input_ids"][row, : len(window)].tolist() == window
        expected = model(torch.tensor([window])).last_hidden_state[0]
        assert torch.equal(saved["embeddings"][row, : len(window)], expected)
    assert set(saved["text_index"].tolist()) == {0}


def test_embed_checks_every_file_before_loading(tmp_path, capsys, monkeypatch):
    _no_loading(monkeypatch)
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    missing = tmp_path / "missing.txt"
    for args, message in [
        (["--file", str(missing), "--output", "e.npy"], f"--file {missing}: no such file"),
        (["--lines", str(tmp_path), "--output", "e.npy"], f"--lines {tmp_path}: is a folder, not a file"),
    ]:
        assert main(["embed", str(model), *args]) == 1
        assert capsys.readouterr().err == f"hf-embed embed: error: {message}\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", str(model), "--text", "x", "--output", "e.txt"])
    assert exit_info.value.code == 2
    assert "argument --output: 'e.txt' must end in .safetensors or .npz or .npy" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "nope"), "--text", "x", "--output", "e.npy"]) == 1
    assert capsys.readouterr().err == f"hf-embed embed: error: {tmp_path / 'nope'}: no such folder\n"
    assert main(["embed", str(tmp_path), "--text", "x", "--output", "e.npy"]) == 1
    assert f"{tmp_path}: no config.json, so it is not a saved model folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- start-up and argument checks

HEAVY = ("torch", "transformers", "numpy", "tokenizers", "safetensors")
COMMANDS = ["demo", "init", "embed", "inspect", "resize", "push", "plot-positions", "plot-tokens", "tokenize"]
COMMANDS += ["train-tokenizer"]


@pytest.mark.slow
def test_help_and_argument_errors_import_nothing_heavy(tmp_path):
    """`--help`, `COMMAND --help` and every kind of argument error answer before torch or transformers load."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "a.txt").write_text("some text", encoding="utf-8")
    folder, text, missing = str(tmp_path / "folder"), str(tmp_path / "a.txt"), str(tmp_path / "missing")
    cases = [
        (["--help"], 0),
        *(([command, "--help"], 0) for command in COMMANDS),
        (["no-such-command"], 2),
        (["embed", folder, "--text", "x", "--output", "e.txt"], 2),
        (["embed", folder, "--lines", missing, "--output", "e.npz"], 1),
        (["embed", folder, "--text", "x", "--output", "e.npy", "--pooling", "max"], 2),
        (["init", "--hidden-size", "0", "--output", folder], 2),
        (["init", "--tokenizer", missing, "--output", folder], 1),
        (["init", "--output", str(tmp_path)], 1),  # not empty, no --force
        (["plot-tokens", missing, "--ids", "1", "2", "3"], 1),
        (["plot-tokens", folder, "--ids", "1", "2", "3", "--output", "t.gif"], 2),
        (["embed", missing, "--text", "x", "--output", "e.npy"], 1),
        (["embed", folder, "--file", missing, "--output", "e.npy"], 1),
        (["embed", folder, "--text", "x", "--output", text], 2),
        (["init", "--preset", "no-such-preset", "--output", folder], 2),
        (["init", "--position-embedding-type", "alibi", "--output", folder], 2),
        (["init", "--output", text], 1),
        (["inspect", missing], 1),
        (["inspect", folder, "--top", "0"], 2),
        (["resize", missing, "--max-positions", "8", "--output", "o"], 1),
        (["resize", folder, "--max-positions", "8", "--output", "o"], 1),  # no config.json
        (["resize", folder, "--max-positions", "0", "--output", "o"], 2),
        (["resize", folder, "--max-positions", "8", "--method", "cubic", "--output", "o"], 2),
        (["push", missing, "user/name"], 1),
        (["plot-positions", "--preset", "tiny", "--output", "p.jpg"], 2),
        (["plot-positions", "--model", folder], 1),  # no config.json
        (["plot-positions", "--preset", "tiny", "--positions", "0"], 2),
        (["plot-positions", "--model", folder, "--position-embedding-type", "rotary"], 1),
        (["tokenize", missing, "--output", "t.bin"], 1),
        (["tokenize", folder, "--output", "t.bin"], 1),
        (["tokenize", text, "--output", text], 1),
        (["tokenize", text, "--output", "t.bin", "--threads", "0"], 2),
        (["tokenize", text, "--output", "t.bin", "--num-shards", "2", "--shard-index", "2"], 1),
        (["train-tokenizer", text, "--vocab-size", "257", "--output", folder], 2),
        (["train-tokenizer", missing, "--vocab-size", "300", "--output", folder], 1),
        (["train-tokenizer", text, "--vocab-size", "300", "--output", text], 1),
    ]
    code = f"""
import contextlib, io, json, sys
from hf_embed.cli import main
results = []
for argv, _ in {cases!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
    results.append([argv, status, err.getvalue()[-300:], sorted(m for m in {HEAVY!r} if m in sys.modules)])
print(json.dumps(results))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for (argv, status, err, heavy), (_, expected) in zip(json.loads(done.stdout), cases, strict=True):
        assert (status, heavy) == (expected, []), (argv, err)
        assert expected == 0 or "error:" in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "folder"]  # nothing written


def test_argument_choices_agree_with_the_package():
    """The CLI lists presets and position schemes without importing the configuration; they must agree."""
    from hf_embed.cli.common import POSITION_EMBEDDING_TYPES, preset_names
    from hf_embed.configuration_hf_embed import POSITION_EMBEDDING_TYPES as CONFIG_TYPES
    from hf_embed.configuration_hf_embed import available_presets

    assert POSITION_EMBEDDING_TYPES == CONFIG_TYPES
    assert preset_names() == available_presets()


def saved_folder(folder: Path, cls=None, **overrides) -> Path:
    """A tiny model (vocab 99, 16 positions) saved with GPT-2's tokenizer, as `hf-embed init` writes folders."""
    from hf_embed import HfEmbedConfig, HfEmbedModel, gpt2_tokenizer

    torch.manual_seed(0)
    model = (cls or HfEmbedModel)(HfEmbedConfig.from_preset("tiny", head_dim=8, **overrides))
    model.save_pretrained(folder)
    tokenizer = gpt2_tokenizer()
    tokenizer.model_max_length = 16
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("method", ["keep", "extend", "interpolate"])
def test_resize_writes_a_new_folder(method, tmp_path, capsys):
    from hf_embed import HfEmbedModel

    source = saved_folder(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    table = HfEmbedModel.from_pretrained(source).embeddings.wpe.weight.detach()
    out = tmp_path / "longer"
    args = ["resize", str(source), "--max-positions", "40", "--method", method, "--output", str(out)]
    assert main(args) == 0
    assert f"absolute positions 16 -> 40 ({method}); tokenizer copied" in capsys.readouterr().out
    resized = HfEmbedModel.from_pretrained(out)
    assert resized.config.max_position_embeddings == 40 and resized.embeddings.wpe.weight.shape == (40, 32)
    if method == "interpolate":
        expected = torch.nn.functional.interpolate(table.T[None], size=40, mode="linear", align_corners=True)[0].T
        assert torch.equal(resized.embeddings.wpe.weight, expected)
    else:
        assert torch.equal(resized.embeddings.wpe.weight[:16], table)
    assert AutoTokenizer.from_pretrained(out).model_max_length == 40
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before  # the model folder is not touched


@pytest.mark.slow
def test_resize_keeps_an_untied_head_and_a_dynamic_ropes_original_length(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from hf_embed import HfEmbedForCausalLM

    source = saved_folder(tmp_path / "lm", HfEmbedForCausalLM, tie_word_embeddings=False)
    head = AutoModelForCausalLM.from_pretrained(source).lm_head.weight
    assert main(["resize", str(source), "--max-positions", "8", "--output", str(tmp_path / "short")]) == 0
    resized = AutoModelForCausalLM.from_pretrained(tmp_path / "short")
    assert torch.equal(resized.lm_head.weight, head) and resized.config.max_position_embeddings == 8

    rope = {"rope_type": "dynamic", "factor": 2.0}
    source = saved_folder(tmp_path / "rotary", position_embedding_type="rotary", rope_parameters=rope)
    assert main(["resize", str(source), "--max-positions", "64", "--output", str(tmp_path / "long")]) == 0
    assert "rotary positions 16 -> 64 (keep)" in capsys.readouterr().out
    config = AutoModel.from_pretrained(tmp_path / "long").config
    assert config.rope_parameters == {**rope, "rope_theta": 10000.0, "original_max_position_embeddings": 16}


def test_resize_checks_its_arguments_before_loading(tmp_path, capsys):
    source = saved_folder(tmp_path / "m", position_embedding_type="rotary")
    (source / "model.safetensors").write_bytes(b"not weights")  # anything that loads would fail on this
    for bad in (["--max-positions", "0"], ["--max-positions", "x"], ["--max-positions", "8", "--method", "cubic"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["resize", str(source), *bad, "--output", str(tmp_path / "o")])
        assert exit_info.value.code == 2
    capsys.readouterr()
    args = ["resize", str(source), "--max-positions", "64", "--method", "interpolate", "--output", str(tmp_path / "o")]
    assert main(args) == 1
    assert "--method interpolate resamples a learned position table;" in capsys.readouterr().err
    assert main(["resize", str(source), "--max-positions", "64", "--output", str(source)]) == 1
    assert "is one of the inputs: writing it would destroy that input" in capsys.readouterr().err
    assert main(["resize", str(tmp_path / "nowhere"), "--max-positions", "64", "--output", str(tmp_path / "o")]) == 1
    assert "nowhere: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["resize", str(tmp_path / "empty"), "--max-positions", "64", "--output", str(tmp_path / "o")]) == 1
    assert "empty: no config.json, so it is not a saved model folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_tokenize_and_train(tmp_path, capsys, caplog):
    files = [write_text(tmp_path / f"{i}.txt", make_text(300, seed=i)) for i in range(2)]
    assert main(["train-tokenizer", *map(str, files), "--vocab-size", "400", "--output", str(tmp_path / "tok")]) == 0
    assert "trained a byte-level BPE of" in capsys.readouterr().out
    out = tmp_path / "t.bin"
    args = ["tokenize", *map(str, files), "--tokenizer", str(tmp_path / "tok"), "--output", str(out)]
    assert main([*args, "--eos-between-files"]) == 0
    assert "2 files" in capsys.readouterr().out
    assert read_header(out)["eos_between_files"] is True
    assert main(["tokenize", str(tmp_path / "nope.txt"), "--output", str(out)]) == 1
    assert "nope.txt: no such file" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_bytes(b"")
    assert main(["tokenize", str(files[0]), str(tmp_path / "empty.txt"), "--output", str(out)]) == 0
    assert "empty.txt: empty file, skipped" in caplog.text  # a warning on stderr (pytest captures the log)
    assert "1 files (1 empty skipped)" in capsys.readouterr().out
    assert main(["tokenize", str(files[0]), "--output", str(out), "--dtype", "uint16", "--tokenizer", "gpt2"]) == 0
