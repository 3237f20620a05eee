"""Publishing with the real `huggingface_hub` client against a Hub stand-in on 127.0.0.1.

Each step runs in its own process with HF_ENDPOINT pointing at the stand-in and an empty cache, as a user's
would; nothing is sent anywhere but the loopback interface.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from hf_embed import HfEmbedConfig, HfEmbedModel
from hf_embed.hub import model_card
from hub_server import VALID_TOKEN, HubServer

pytestmark = pytest.mark.slow  # subprocesses, a loopback server

PUSH = textwrap.dedent(
    """
    import json, sys
    import torch
    from safetensors.torch import save_file
    from hf_embed import HfEmbedConfig, HfEmbedModel, gpt2_tokenizer
    from hf_embed.hub import push

    torch.manual_seed(0)
    model = HfEmbedModel(HfEmbedConfig.from_preset("gpt2", hidden_size=16, max_position_embeddings=32)).eval()
    tokenizer = gpt2_tokenizer()
    first = push(model, tokenizer, "alice/tiny-embed", how_made="Random init for a test.")
    second = push(model, tokenizer, "alice/tiny-embed", how_made="Random init for a test.")
    native = model.push_to_hub("alice/native-embed")
    ids = torch.tensor([tokenizer("Hello world, hello Hub")["input_ids"]])
    save_file({"ids": ids, "out": model(ids).last_hidden_state.contiguous()}, sys.argv[1])
    print(json.dumps({"first": first.oid, "second": second.oid}))
    """
)

LOAD = textwrap.dedent(
    """
    import sys
    if sys.argv[2] == "remote":
        sys.modules["hf_embed"] = None  # the package cannot be imported: only trust_remote_code can load it
    else:
        import hf_embed  # noqa: F401
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    reference = load_file(sys.argv[1])
    remote = sys.argv[2] == "remote"
    model = AutoModel.from_pretrained(sys.argv[3], trust_remote_code=remote).eval()
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[3], trust_remote_code=remote)
    ids = torch.tensor([tokenizer("Hello world, hello Hub")["input_ids"]])
    assert torch.equal(ids, reference["ids"]), (ids, reference["ids"])
    assert torch.equal(model(ids).last_hidden_state, reference["out"])
    print(type(model).__module__)
    """
)


def run(script: str, args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def hub(tmp_path):
    with HubServer() as server:
        yield server


def hub_env(hub, tmp_path, name: str, token: str = VALID_TOKEN) -> dict:
    return {
        "PATH": "/usr/bin:/bin",
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": token,
        "HF_HOME": str(tmp_path / name),  # a fresh, empty cache
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1",
    }


def test_push_then_load_from_the_hub(hub, tmp_path):
    reference = str(tmp_path / "reference.safetensors")
    pushed = run(PUSH, [reference], hub_env(hub, tmp_path, "pusher"))
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    commits = json.loads(pushed.stdout.strip().splitlines()[-1])
    repo = hub.state.repos["alice/tiny-embed"]
    assert commits["first"] == commits["second"] == repo["commits"][-1]  # the second push made no commit
    assert len(repo["commits"]) == 2  # the empty initial one, then one upload
    assert set(repo["files"]) >= {
        "config.json", "model.safetensors", "configuration_hf_embed.py", "modeling_hf_embed.py",
        "tokenizer.json", "tokenizer_config.json", "README.md",
    }  # fmt: skip
    assert json.loads(repo["files"]["config.json"])["auto_map"]["AutoModel"] == "modeling_hf_embed.HfEmbedModel"
    card = repo["files"]["README.md"].decode()
    assert "library_name: transformers" in card and "pipeline_tag: feature-extraction" in card
    assert "Random init for a test." in card and "| hidden size | 16 |" in card
    assert "model.safetensors" in hub.state.repos["alice/native-embed"]["files"]

    loaded = run(LOAD, [reference, "installed", "alice/tiny-embed"], hub_env(hub, tmp_path, "user1"))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().endswith("hf_embed.modeling_hf_embed")
    remote = run(LOAD, [reference, "remote", "alice/tiny-embed"], hub_env(hub, tmp_path, "user2"))
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert remote.stdout.strip().splitlines()[-1].startswith("transformers_modules")


PUSH_ONLY = textwrap.dedent(
    """
    from hf_embed import HfEmbedConfig, HfEmbedModel
    from hf_embed.hub import push
    push(HfEmbedModel(HfEmbedConfig.from_preset("tiny")), None, "alice/failing")
    """
)


def test_bad_token_is_a_clear_error(hub, tmp_path):
    result = run(PUSH_ONLY, [], hub_env(hub, tmp_path, "bad", token="hf_wrong"))
    assert result.returncode != 0
    assert "401" in result.stderr and "Invalid credentials" in result.stderr
    assert "alice/failing" not in hub.state.repos


def test_server_error_is_a_clear_error(hub, tmp_path):
    hub.state.fail_with = 500
    result = run(PUSH_ONLY, [], hub_env(hub, tmp_path, "err"))
    assert result.returncode != 0
    assert "500" in result.stderr and "Internal Error" in result.stderr


def test_model_card_content():
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="rotary"))
    card = model_card(model, "bob/rope-embed", license="mit")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "feature-extraction"
    assert card.data.license == "mit" and "positions-rotary" in card.data.tags
    text = str(card)
    assert 'AutoModel.from_pretrained("bob/rope-embed", trust_remote_code=True)' in text
    assert "| positions | `rotary`, up to 16 |" in text and f"| parameters | {model.num_parameters():,} |" in text


def test_cli_push(hub, tmp_path):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    model.save_pretrained(tmp_path / "model")
    script = "import sys; from hf_embed.cli import main; sys.exit(main(sys.argv[1:]))"
    result = run(script, ["push", str(tmp_path / "model"), "carol/cli-embed"], hub_env(hub, tmp_path, "cli"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "carol/cli-embed" in result.stdout
    files = hub.state.repos["carol/cli-embed"]["files"]
    assert torch.equal(
        load_file(tmp_path / "model" / "model.safetensors")["embeddings.wte.weight"],
        HfEmbedModel.from_pretrained(tmp_path / "model").embeddings.wte.weight,
    )
    assert "model.safetensors" in files and "README.md" in files
    failed = run(script, ["push", str(tmp_path / "model"), "carol/x"], hub_env(hub, tmp_path, "cli2", token="bad"))
    assert (
        failed.returncode == 1
        and failed.stderr.startswith("hf-embed push: error:")
        and "Traceback" not in failed.stderr
    )


CLI = "import sys; from hf_embed.cli import main; sys.exit(main(sys.argv[1:]))"


def test_push_without_a_token_says_how_to_give_one(hub, tmp_path):
    model_dir = tmp_path / "model"
    HfEmbedModel(HfEmbedConfig.from_preset("tiny")).save_pretrained(model_dir)
    env = hub_env(hub, tmp_path, "no-token")
    del env["HF_TOKEN"]  # and HF_HOME is empty: no saved login either
    result = run(CLI, ["push", str(model_dir), "dave/no-token"], env)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        "hf-embed push: error: no Hugging Face token to push dave/no-token: give one with `--token` (`token=` in "
        "Python), the HF_TOKEN environment variable, or `hf auth login`\n"
    )
    library = run(PUSH_ONLY, [], env)
    assert "PermissionError: no Hugging Face token to push alice/failing" in library.stderr
    refused = run(CLI, ["push", str(model_dir), "dave/no-token", "--token", "hf_wrong"], env)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith(f"hf-embed push: error: the Hub at {hub.url} refused the token (401 Unauthorized")
    assert "`--token`" in refused.stderr and "HF_TOKEN" in refused.stderr and "`hf auth login`" in refused.stderr
    assert hub.state.repos == {}  # nothing was created


def test_each_log_line_is_printed_once(hub, tmp_path):
    """huggingface_hub logs through its own stderr handler; the CLI must not print its lines a second time."""
    model_dir = tmp_path / "model"
    HfEmbedModel(HfEmbedConfig.from_preset("tiny")).save_pretrained(model_dir)
    env = hub_env(hub, tmp_path, "twice")
    first = run(CLI, ["push", str(model_dir), "erin/once"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run(CLI, ["push", str(model_dir), "erin/once"], env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("No files have been modified since last commit") == 1, second.stderr
    assert len(hub.state.repos["erin/once"]["commits"]) == 2


@pytest.mark.parametrize("with_tokenizer", [True, False])
def test_model_card_usage_runs_as_written_without_the_package(hub, tmp_path, with_tokenizer):
    """The card's Python block, copied from the pushed README.md and run where hf_embed cannot be imported,
    with no terminal to answer a "Do you wish to run the custom code?" prompt."""
    model_dir = tmp_path / "model"
    config = HfEmbedConfig.from_preset("gpt2", hidden_size=16, max_position_embeddings=8)
    HfEmbedModel(config).save_pretrained(model_dir)
    if with_tokenizer:
        from hf_embed import gpt2_tokenizer

        gpt2_tokenizer().save_pretrained(model_dir)  # claims GPT-2's 1024 positions; the model has 8
    env = hub_env(hub, tmp_path, "card")
    pushed = run(CLI, ["push", str(model_dir), "frank/card"], env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    files = hub.state.repos["frank/card"]["files"]
    if with_tokenizer:  # the pushed tokenizer claims the model's real context, so truncation=True cuts there
        assert json.loads(files["tokenizer_config.json"])["model_max_length"] == 8
    card = files["README.md"].decode()
    (usage,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert ("AutoTokenizer" in usage) == with_tokenizer
    script = 'import sys\nsys.modules["hf_embed"] = None  # the package cannot be imported\n' + usage
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=hub_env(hub, tmp_path, "reader"),
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = "torch.Size([2, 5, 16])" if with_tokenizer else "torch.Size([1, 3, 16])"
    assert result.stdout.strip().splitlines()[-1] == expected
    assert "custom code" not in result.stdout + result.stderr  # no prompt, no warning
