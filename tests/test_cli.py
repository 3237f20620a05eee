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

from hf_embed.cli import SAMPLE_TEXT, main


@pytest.mark.slow
def test_demo_runs_offline_on_embedded_text(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = tmp_path / "demo"
    assert main(["demo", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "first batch inputs (8, 4)" in printed
    assert "token embeddings: (8, 4) -> (8, 4, 256)" in printed
    assert "token + position embeddings: (8, 4) -> (8, 4, 256)" in printed
    assert "identical embeddings and token ids" in printed
    model = AutoModel.from_pretrained(output)
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert model.config.hidden_size == 256 and model.config.max_position_embeddings == 4
    first_ids = tokenizer(SAMPLE_TEXT)["input_ids"][:4]
    assert str(first_ids[0]) in printed and len(tokenizer) == 50257
    # the demo's model is the seeded book setup: seed 123, then nn.Embedding(50257, 256)
    torch.manual_seed(123)
    assert torch.equal(model.embeddings.wte.weight, torch.nn.Embedding(50257, 256).weight)


@pytest.mark.slow
def test_demo_with_text_file(tmp_path, capsys):
    text_file = tmp_path / "story.txt"
    text_file.write_text("Ein kleiner Text über Bücher und Straßen. " * 10, encoding="utf-8")
    assert main(["demo", "--text-file", str(text_file), "--output", str(tmp_path / "out")]) == 0
    assert "(8, 4) -> (8, 4, 256)" in capsys.readouterr().out


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
    commands = ["demo", "init", "embed", "inspect", "resize", "push", "plot-positions", "tokenize", "train-tokenizer"]
    for command in commands:
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
    assert lines[6] == "nearest to ' king' (id 5822) by cosine similarity:" and len(lines) == 10
    assert lines[7].split()[1:] == ["16599", "'", "queen'"] and lines[7].split()[0].startswith("+0.99")
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


def test_init_refuses_a_tokenizer_too_big_for_the_model(tmp_path, capsys):
    assert main(["init", "--preset", "tiny", "--output", str(tmp_path / "m")]) == 1
    assert "the tokenizer produces 50257 ids but the model's vocab_size is 99" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_init_from_gpt2(tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64))
    gpt2.save_pretrained(tmp_path / "gpt2")
    assert main(["init", "--from-gpt2", str(tmp_path / "gpt2"), "--output", str(tmp_path / "m")]) == 0
    from hf_embed import HfEmbedModel

    model = HfEmbedModel.from_pretrained(tmp_path / "m")
    assert torch.equal(model.embeddings.wte.weight, gpt2.transformer.wte.weight)


# --------------------------------------------------------------------------- start-up and argument checks

HEAVY = ("torch", "transformers", "numpy", "tokenizers", "safetensors")
COMMANDS = ["demo", "init", "embed", "inspect", "resize", "push", "plot-positions", "tokenize", "train-tokenizer"]


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
        (["embed", folder, "--text", "x", "--output", "e.npz"], 2),
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
