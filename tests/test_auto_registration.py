"""`import hf_embed` is cheap (no torch, no transformers) and still teaches the Auto classes the `hf_embed` type.

Each check runs in a fresh interpreter: what is imported, and in which order, is the point.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import hf_embed
from hf_embed import _auto_registration

HEAVY = ("torch", "transformers", "numpy", "tokenizers", "safetensors")


def run_python(code: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_import_loads_neither_torch_nor_transformers():
    out = run_python(f"import sys, hf_embed; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert out.strip() == "[]"


@pytest.mark.slow
def test_config_access_does_not_load_the_model_classes():
    out = run_python(
        """
        import sys, hf_embed
        hf_embed.HfEmbedConfig
        print("transformers.modeling_utils" in sys.modules, "hf_embed.modeling_hf_embed" in sys.modules)
        """
    )
    assert out.split() == ["False", "False"]


def test_hook_targets_are_where_transformers_defines_the_auto_classes():
    """Were the Auto classes to move, registration would silently never run: fail here instead."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    assert AutoConfig.__module__ == _auto_registration.CONFIGURATION_AUTO
    assert AutoModel.__module__ == AutoModelForCausalLM.__module__ == _auto_registration.MODELING_AUTO


@pytest.mark.slow
@pytest.mark.parametrize("transformers_first", [False, True])
def test_auto_classes_know_hf_embed_in_either_import_order(transformers_first):
    imports = ["import hf_embed", "from transformers import AutoConfig, AutoModel, AutoModelForCausalLM"]
    if transformers_first:
        imports.reverse()
    run_python(
        "\n".join(imports)
        + """
import sys
from hf_embed import _auto_registration
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_MAPPING

config = hf_embed.HfEmbedConfig(vocab_size=99, hidden_size=8, max_position_embeddings=16)
assert type(AutoModel.from_config(config)) is hf_embed.HfEmbedModel
assert type(AutoModelForCausalLM.from_config(config)) is hf_embed.HfEmbedForCausalLM
assert type(AutoConfig.for_model("hf_embed")) is hf_embed.HfEmbedConfig
assert CONFIG_MAPPING["hf_embed"] is hf_embed.HfEmbedConfig
assert MODEL_MAPPING[hf_embed.HfEmbedConfig] is hf_embed.HfEmbedModel
assert hf_embed.HfEmbedForCausalLM in MODEL_FOR_CAUSAL_LM_MAPPING.values()  # what pipelines and peft read
assert not any(isinstance(f, _auto_registration._Finder) for f in sys.meta_path), sys.meta_path  # gone when done
"""
    )


@pytest.mark.slow
def test_auto_model_from_pretrained_after_a_bare_import(tmp_path):
    config = hf_embed.HfEmbedConfig(vocab_size=99, hidden_size=8, max_position_embeddings=16)
    hf_embed.HfEmbedModel(config).save_pretrained(tmp_path / "base")
    hf_embed.HfEmbedForCausalLM(config).save_pretrained(tmp_path / "lm")
    out = run_python(
        f"""
        import pickle
        import hf_embed
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
        assert type(AutoConfig.from_pretrained({str(tmp_path / "base")!r})) is hf_embed.HfEmbedConfig
        model = AutoModel.from_pretrained({str(tmp_path / "base")!r})
        assert type(pickle.loads(pickle.dumps(model))) is hf_embed.HfEmbedModel
        assert type(AutoModelForCausalLM.from_pretrained({str(tmp_path / "lm")!r})) is hf_embed.HfEmbedForCausalLM
        print(type(model).__qualname__)
        """
    )
    assert out.strip() == "HfEmbedModel"


@pytest.mark.slow
def test_save_after_a_direct_submodule_import_writes_the_remote_code(tmp_path):
    """No Auto class touched: `save_pretrained` still writes `auto_map` and copies the model files."""
    out = run_python(
        f"""
        import json, os, sys
        from hf_embed.configuration_hf_embed import HfEmbedConfig
        from hf_embed.modeling_hf_embed import HfEmbedModel
        HfEmbedModel(HfEmbedConfig(vocab_size=99, hidden_size=8, max_position_embeddings=16)).save_pretrained(
            {str(tmp_path)!r}
        )
        print(json.load(open(os.path.join({str(tmp_path)!r}, "config.json")))["auto_map"]["AutoModel"])
        """
    )
    assert out.strip() == "modeling_hf_embed.HfEmbedModel"
    assert (tmp_path / "modeling_hf_embed.py").is_file() and (tmp_path / "configuration_hf_embed.py").is_file()


@pytest.mark.slow
def test_auto_module_and_model_module_imported_by_two_threads_at_once():
    """Registration runs inside the import of `modeling_auto`; the model module imported at the same moment by
    another thread must neither deadlock nor miss the registration."""
    run_python(
        """
        import threading
        import hf_embed
        from transformers import PreTrainedModel  # transformers' own first-import race is not what is tested

        errors, barrier = [], threading.Barrier(2)

        def load(name):
            try:
                barrier.wait()
                __import__(name)
            except Exception as error:
                errors.append(repr(error))

        names = ["transformers.models.auto.modeling_auto", "hf_embed.modeling_hf_embed"]
        threads = [threading.Thread(target=load, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads), "deadlock"
        assert not errors, errors
        from transformers import AutoModel
        config = hf_embed.HfEmbedConfig(vocab_size=99, hidden_size=8, max_position_embeddings=16)
        assert type(AutoModel.from_config(config)) is hf_embed.HfEmbedModel
        """,
        timeout=200,
    )


def test_public_names_resolve_lazily_to_the_defining_objects():
    assert sorted(hf_embed.__all__) == sorted(hf_embed._LAZY)
    for name in hf_embed.__all__:
        assert getattr(hf_embed, name) is getattr(sys.modules[f"hf_embed.{hf_embed._LAZY[name]}"], name)
        assert name in dir(hf_embed)
    for name in hf_embed._SUBMODULES:  # `hf_embed.data.X` after a bare `import hf_embed`, as before
        assert getattr(hf_embed, name) is sys.modules[f"hf_embed.{name}"]
    with pytest.raises(AttributeError, match="no_such_name"):
        hf_embed.no_such_name  # noqa: B018


def test_model_classes_carry_their_auto_class():
    """What `register_for_auto_class` would set: `save_pretrained` writes `auto_map` and copies the code."""
    assert hf_embed.HfEmbedConfig._auto_class == "AutoConfig"
    assert hf_embed.HfEmbedModel._auto_class == "AutoModel"
    assert hf_embed.HfEmbedForCausalLM._auto_class == "AutoModelForCausalLM"


def test_a_failed_registration_is_a_warning_not_an_error_in_someone_elses_import(monkeypatch):
    def broken() -> None:
        raise ImportError("no such class")

    monkeypatch.setattr(_auto_registration, "_pending", {"some.module": broken})
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # `_run` may take its finder out
    with pytest.warns(RuntimeWarning, match=r"could not register .* after importing some\.module"):
        _auto_registration._run("some.module")
    assert _auto_registration._pending == {}
