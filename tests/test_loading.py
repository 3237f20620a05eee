"""Strict loading: a checkpoint loads whole, or it is an error that names the file and the tensors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from hf_embed import HfEmbedConfig, HfEmbedForCausalLM, HfEmbedModel
from hf_embed.cli import main


@pytest.fixture
def good(tmp_path):
    folder = tmp_path / "good"
    HfEmbedModel(HfEmbedConfig.from_preset("tiny")).save_pretrained(folder)
    return folder


def variant(good, name: str, change) -> str:
    """A copy of the good folder whose weights (a dict) went through `change`."""
    folder = good.parent / name
    folder.mkdir()
    (folder / "config.json").write_text((good / "config.json").read_text())
    tensors = change(load_file(good / "model.safetensors"))
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return str(folder)


BROKEN = {
    "missing": (
        lambda t: {"embeddings.wte.weight": t["embeddings.wte.weight"]},
        r"missing tensors \[(model\.)?embeddings.wpe.weight\]\. Nothing was loaded",
    ),
    "renamed": (
        lambda t: {
            "embeddings.wte.weight": t["embeddings.wte.weight"],
            "embeddings.pos.weight": t["embeddings.wpe.weight"],
        },
        r"missing tensors \[(model\.)?embeddings.wpe.weight\]; unexpected tensors \[embeddings.pos.weight\]",
    ),
    "unexpected": (
        lambda t: {**t, "embeddings.extra.weight": torch.zeros(3)},
        r"unexpected tensors \[embeddings.extra.weight\]",
    ),
    "shape": (
        lambda t: {**t, "embeddings.wpe.weight": torch.zeros(8, 32)},
        r"embeddings.wpe.weight is \(8, 32\) in the file but \(16, 32\) by config.json",
    ),
    "dtype": (
        lambda t: {**t, "embeddings.wte.weight": t["embeddings.wte.weight"].half()},
        r"config.json declares dtype float32 but embeddings.wte.weight is float16 in model.safetensors",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_checkpoint_that_does_not_match_is_an_error(good, case, capsys):
    change, message = BROKEN[case]
    folder = variant(good, case, change)
    for load in (HfEmbedModel.from_pretrained, AutoModel.from_pretrained, AutoModelForCausalLM.from_pretrained):
        with pytest.raises(ValueError, match=message) as error:
            load(folder)
        assert folder in str(error.value)
    if case != "dtype":
        assert f"{folder}/model.safetensors: the checkpoint does not match the model" in str(error.value)
    capsys.readouterr()
    assert main(["inspect", folder]) == 1  # the command line says it in one line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hf-embed inspect: error:") and re.search(message, err)


def test_partial_loads_only_when_asked(good):
    folder = variant(good, "missing", BROKEN["missing"][0])
    model, report = HfEmbedModel.from_pretrained(folder, output_loading_info=True)
    assert report["missing_keys"] == {"embeddings.wpe.weight"}
    assert torch.equal(model.embeddings.wte.weight, load_file(good / "model.safetensors")["embeddings.wte.weight"])
    shape = variant(good, "shape", BROKEN["shape"][0])
    model = HfEmbedModel.from_pretrained(shape, ignore_mismatched_sizes=True)  # re-initialized, as asked
    assert model.embeddings.wpe.weight.shape == (16, 32) and model.embeddings.wpe.weight.std() > 0
    with pytest.raises(ValueError, match="missing tensors"):  # a size opt-in does not accept missing tensors
        HfEmbedModel.from_pretrained(folder, ignore_mismatched_sizes=True)


def test_head_and_base_folders_load_into_each_other(tmp_path, tiny_ids):
    """The tied head is not saved, and a base folder gives the head its table: neither is a missing tensor."""
    causal = HfEmbedForCausalLM(HfEmbedConfig.from_preset("tiny")).eval()
    causal.save_pretrained(tmp_path / "causal")
    base = HfEmbedModel.from_pretrained(tmp_path / "causal")
    assert torch.equal(base(tiny_ids).last_hidden_state, causal.model(tiny_ids).last_hidden_state)
    base.save_pretrained(tmp_path / "base")
    head = HfEmbedForCausalLM.from_pretrained(tmp_path / "base")
    assert head.lm_head.weight is head.model.embeddings.wte.weight
    assert torch.equal(head(tiny_ids).logits, causal(tiny_ids).logits)
    untied = HfEmbedConfig.from_preset("tiny", tie_word_embeddings=False)
    with pytest.raises(ValueError, match=r"missing tensors \[lm_head.weight\]"):  # an untied head needs its own
        HfEmbedForCausalLM.from_pretrained(tmp_path / "base", config=untied)


@pytest.fixture
def gpt2_folder(tmp_path):
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=99, n_embd=32, n_positions=16, n_layer=1, n_head=2, bos_token_id=98))
    gpt2.save_pretrained(tmp_path / "gpt2")
    return gpt2, tmp_path / "gpt2"


def test_a_gpt2_folder_is_refused_with_the_hint_to_convert_it(gpt2_folder, capsys):
    gpt2, folder = gpt2_folder
    for load in (HfEmbedModel.from_pretrained, HfEmbedForCausalLM.from_pretrained):
        with pytest.raises(ValueError, match=r"is a transformers GPT-2 checkpoint .*HfEmbedModel.from_transformers"):
            load(folder)
    converted = HfEmbedModel.from_gpt2(folder)
    assert torch.equal(converted.embeddings.wte.weight, gpt2.transformer.wte.weight)
    for command in (["inspect", str(folder)], ["embed", str(folder), "--text", "hi", "--output", "x.npy"]):
        capsys.readouterr()
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "GPT-2 checkpoint" in err and "hf-embed init --from-gpt2" in err


def test_missing_folder_and_missing_config(tmp_path, good, capsys):
    (tmp_path / "weights-only").mkdir()
    (tmp_path / "weights-only" / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
    with pytest.raises(FileNotFoundError, match=r"weights-only: no config.json in this folder"):
        HfEmbedModel.from_pretrained(tmp_path / "weights-only")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        HfEmbedModel.from_pretrained(tmp_path / "absent")
    with pytest.raises(NotADirectoryError, match="is a file"):
        HfEmbedModel.from_pretrained(str(good / "model.safetensors"))
    for folder, words in ((tmp_path / "weights-only", "no config.json"), (tmp_path / "absent", "no such folder")):
        assert main(["inspect", str(folder)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err


class RecordingHub(BaseHTTPRequestHandler):
    """Answers 404 to everything and records the paths asked for."""

    paths: list[str] = []

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.paths.append(self.path)
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD


LOOKUPS = textwrap.dedent(
    """
    import sys
    from hf_embed import HfEmbedModel
    for name in sys.argv[1:]:
        try:
            HfEmbedModel.from_pretrained(name)
        except Exception as error:
            print(type(error).__name__, str(error).splitlines()[0][:100])
    """
)


@pytest.mark.slow
def test_a_local_looking_path_never_reaches_the_hub(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHub)
    RecordingHub.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = ["./absent", "../absent", "~/absent-hf-embed", "/absent/model", "a/b/c", "runs/model", "gone/", "bad name"]
    hub = ["org/name"]
    env = {"PATH": "/usr/bin:/bin", "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}", "NO_PROXY": "127.0.0.1"}
    env |= {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1", "HOME": str(tmp_path)}
    try:
        result = subprocess.run(
            [sys.executable, "-c", LOOKUPS, *local, *hub], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
    lines = result.stdout.splitlines()
    assert len(lines) == len(local) + len(hub), result.stderr[-3000:]
    for name, line in zip(local, lines, strict=False):
        assert line.startswith("FileNotFoundError") and "no such folder" in line, (name, line)
    assert "no such folder" not in lines[-1] and "org/name" in lines[-1]  # a Hub id went to the Hub
    assert RecordingHub.paths and all("/org/name" in path for path in RecordingHub.paths)  # only the Hub id


@pytest.mark.slow
def test_strict_loading_under_remote_code(good, tmp_path):
    """The copied model files refuse a partial checkpoint too, where hf_embed is not installed."""
    folder = variant(good, "missing", BROKEN["missing"][0])
    for code in good.glob("*.py"):
        (tmp_path / "missing" / code.name).write_text(code.read_text())
    assert json.loads((good / "config.json").read_text())["auto_map"]["AutoModel"] == "modeling_hf_embed.HfEmbedModel"
    script = textwrap.dedent(
        """
        import sys
        sys.modules["hf_embed"] = None
        from transformers import AutoModel
        try:
            AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
        except ValueError as error:
            print(error)
        """
    )
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script, folder], capture_output=True, text=True, env=env, timeout=300
    )
    assert "missing tensors [embeddings.wpe.weight]" in result.stdout, result.stderr[-3000:]
