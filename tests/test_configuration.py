"""HfEmbedConfig: fields, GPT-2 aliases, validation, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from transformers import AutoConfig

from hf_embed import HfEmbedConfig, HfEmbedModel, available_presets

PRESET_WIDTHS = {"gpt2": 768, "gpt2-medium": 1024, "gpt2-large": 1280, "gpt2-xl": 1600, "book-ch2": 256, "tiny": 32}


def test_defaults_are_gpt2_small():
    config = HfEmbedConfig()
    assert (config.vocab_size, config.hidden_size, config.max_position_embeddings) == (50257, 768, 1024)
    assert config.position_embedding_type == "absolute"
    assert config.initializer_range == 0.02


def test_gpt2_aliases_work_both_ways():
    config = HfEmbedConfig(n_embd=64, n_positions=128, embd_pdrop=0.1)
    assert (config.hidden_size, config.max_position_embeddings, config.embedding_dropout) == (64, 128, 0.1)
    config.n_embd = 96
    assert config.hidden_size == 96
    assert "n_embd" not in config.to_dict() and config.to_dict()["hidden_size"] == 96


def test_roundtrip_through_autoconfig(tmp_path):
    config = HfEmbedConfig(vocab_size=99, hidden_size=32, initializer_range=None)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is HfEmbedConfig
    assert loaded.to_diff_dict() == config.to_diff_dict()


@pytest.mark.parametrize(("name", "width"), PRESET_WIDTHS.items())
def test_presets(name, width):
    config = HfEmbedConfig.from_preset(name)
    assert config.hidden_size == width
    if name != "tiny":
        assert config.vocab_size == 50257 and config.eos_token_id == 50256


def test_book_preset_is_the_chapter_setup():
    config = HfEmbedConfig.from_preset("book-ch2")
    assert (config.vocab_size, config.hidden_size, config.max_position_embeddings) == (50257, 256, 4)
    assert config.initializer_range is None


def test_preset_overrides_and_unknown_preset():
    assert HfEmbedConfig.from_preset("gpt2", max_position_embeddings=2048).max_position_embeddings == 2048
    assert set(PRESET_WIDTHS) <= set(available_presets())
    with pytest.raises(ValueError, match=r"unknown preset 'gpt5'; available: bloom-560m, book-ch2, gemma-2b, gpt2"):
        HfEmbedConfig.from_preset("gpt5")
    with pytest.raises(ValueError, match=r"overrides: unknown setting 'hiden_size' \(did you mean 'hidden_size'\?\)"):
        HfEmbedConfig.from_preset("gpt2", hiden_size=64)  # kept and ignored by PretrainedConfig otherwise


CONFIG_FILES = sorted((Path(__file__).parents[1] / "configs").glob("*.json"))


def test_the_configs_folder_has_examples():
    assert len(CONFIG_FILES) >= 3


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_config_files_build_with_every_setting_they_state(path):
    """Each example in configs/ is a config whose every written setting is the one the model gets."""
    written = json.loads(path.read_text(encoding="utf-8"))
    config = HfEmbedConfig.from_preset(path)
    for key, value in written.items():
        got = getattr(config, key)
        if key == "rope_parameters":  # stored as transformers does: the written keys stay, defaults may join
            got = {k: got[k] for k in value}
        assert got == value, key
    with torch.device("meta"):
        model = HfEmbedModel(config)
    assert model.embeddings.wte.weight.shape == (written["vocab_size"], written["hidden_size"])
    assert HfEmbedConfig.from_preset(str(path), hidden_size=64).hidden_size == 64  # a str too, and overrides


def test_a_settings_file_is_checked(tmp_path):
    saved = tmp_path / "saved"
    HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="rotary")).save_pretrained(saved)
    again = HfEmbedConfig.from_preset(saved / "config.json")  # a saved model's config.json is a settings file too
    loaded = AutoConfig.from_pretrained(saved).to_diff_dict()
    saving_records = ("architectures", "auto_map", "dtype")  # what save_pretrained adds: no settings of the stage
    assert again.to_diff_dict() == {k: v for k, v in loaded.items() if k not in saving_records}

    def refused(values, message, error=ValueError):
        path = tmp_path / "x.json"
        path.write_text(values if isinstance(values, str) else json.dumps(values), encoding="utf-8")
        with pytest.raises(error, match=message):
            HfEmbedConfig.from_preset(path)

    loaded_model = HfEmbedModel.from_pretrained(saved)
    loaded_model.config.output_hidden_states, loaded_model.config.return_dict = True, False
    loaded_model.save_pretrained(tmp_path / "resaved")  # transformers' own settings in the file
    data = json.loads((tmp_path / "resaved" / "config.json").read_text(encoding="utf-8"))
    data["torch_dtype"] = "float32"  # what transformers 4 wrote
    (tmp_path / "resaved" / "config.json").write_text(json.dumps(data), encoding="utf-8")
    resaved = HfEmbedConfig.from_preset(tmp_path / "resaved" / "config.json")
    assert (resaved.output_hidden_states, resaved.return_dict) == (True, False)
    override = HfEmbedConfig.from_preset("tiny", output_hidden_states=True, id2label={0: "a"}, problem_type=None)
    assert override.output_hidden_states and override.id2label == {0: "a"}

    refused({"hidden_size": 64, "n_layers": 2}, r"x.json: unknown setting 'n_layers'; hf-embed's settings: ")
    refused({"max_positon_embeddings": 8}, r"unknown setting 'max_positon_embeddings' \(did you mean 'max_position_")
    refused({"model_type": "gpt2"}, r"x.json: model_type is 'gpt2', not 'hf_embed'")
    refused("[1, 2]", r"x.json: expected a JSON object of settings, got list")
    refused("{'hidden_size': 8}", r"x.json: not JSON \(Expecting property name")
    refused({"hidden_size": 0}, r"`hidden_size` must be an integer >= 1, got 0")
    with pytest.raises(FileNotFoundError, match=r"nope.json: no such config file"):
        HfEmbedConfig.from_preset(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vocab_size": 0}, r"`vocab_size` must be an integer >= 1, got 0"),
        ({"hidden_size": 12.5}, r"`hidden_size` must be an integer >= 1, got 12.5"),
        ({"max_position_embeddings": -4}, r"`max_position_embeddings` must be an integer >= 1, got -4"),
        ({"n_embd": True}, r"`hidden_size` must be an integer >= 1, got True"),
        ({"position_embedding_type": "alibi"}, r"must be one of \('absolute', .*\), got 'alibi'"),
        ({"embedding_dropout": 1.0}, r"`embedding_dropout` must be a float in \[0, 1\), got 1.0"),
        ({"initializer_range": -0.02}, r"`initializer_range` must be a positive float or None, got -0.02"),
        (
            {"vocab_size": 99, "eos_token_id": 50256},
            r"`eos_token_id` must be an integer in 0..98 \(an id of the vocabulary, size 99; or None\), got 50256",
        ),
        ({"eos_token_id": [50256, -1]}, r"`eos_token_id` must be an integer in 0..50256 .*, got -1"),
        ({"pad_token_id": "0"}, r"`pad_token_id` must be an integer in 0..50256 .*, got '0'"),
        ({"head_dim": 0}, r"`head_dim` must be an integer >= 1 \(or None: the hidden size\), got 0"),
        (
            {"vocab_size": 128, "unpadded_vocab_size": 129},
            r"`unpadded_vocab_size` must be an integer in 1..128 \(the tokenizer's ids, at most vocab_size=128; or ",
        ),
    ],
)
def test_validation_names_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HfEmbedConfig(**kwargs)


# --------------------------------------------------------------------------- presets of other families

# The published config.json of each model (on the Hub: meta-llama/Meta-Llama-3-8B, meta-llama/Llama-3.1-8B,
# mistralai/Mistral-7B-v0.1, Qwen/Qwen2-7B, google/gemma-2b, bigscience/bloom-560m), the numbers that shape the
# embedding stage, written here by hand. Their layer counts do not matter to it (1 layer keeps the meta build small).
PUBLISHED = {
    "llama-3-8b": (
        "Llama",
        {
            "vocab_size": 128256,
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 8192,
            "rope_theta": 500000.0,
            "bos_token_id": 128000,
            "eos_token_id": 128001,
            "tie_word_embeddings": False,
        },
    ),
    "llama-3.1-8b": (
        "Llama",
        {
            "vocab_size": 128256,
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 131072,
            "rope_theta": 500000.0,
            "rope_scaling": {
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3",
            },
            "bos_token_id": 128000,
            "eos_token_id": 128001,
            "tie_word_embeddings": False,
        },
    ),
    "mistral-7b": (
        "Mistral",
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "rope_theta": 10000.0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "tie_word_embeddings": False,
        },
    ),
    "qwen2-7b": (
        "Qwen2",
        {
            "vocab_size": 152064,
            "hidden_size": 3584,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 131072,
            "rope_theta": 1000000.0,
            "bos_token_id": 151643,
            "eos_token_id": 151643,
            "tie_word_embeddings": False,
        },
    ),
    "gemma-2b": (
        "Gemma",
        {
            "vocab_size": 256000,
            "hidden_size": 2048,
            "num_attention_heads": 8,
            "num_key_value_heads": 1,
            "head_dim": 256,
            "max_position_embeddings": 8192,
            "rope_theta": 10000.0,
            "bos_token_id": 2,
            "eos_token_id": 1,
            "pad_token_id": 0,
            "tie_word_embeddings": True,
        },
    ),
    "bloom-560m": (
        "Bloom",
        {
            "vocab_size": 250880,
            "hidden_size": 1024,
            "n_head": 16,
            "layer_norm_epsilon": 1e-05,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 3,
            "tie_word_embeddings": True,
        },
    ),
}


def published_model(name: str):
    """The published model's base class, built from its numbers on the meta device (nothing allocated)."""
    prefix, values = PUBLISHED[name]
    layers = {"n_layer": 1} if prefix == "Bloom" else {"num_hidden_layers": 1, "intermediate_size": 8}
    config = getattr(transformers, f"{prefix}Config")(**values, **layers)
    with torch.device("meta"):
        return getattr(transformers, f"{prefix}Model")(config)


@pytest.mark.parametrize("name", PUBLISHED)
def test_family_presets_are_the_published_embedding_stages(name):
    """Each preset is what `from_transformers` makes of the published config: sizes, ids, RoPE, multiplier, norm."""
    from hf_embed.families import FAMILIES, stage_settings

    preset = HfEmbedConfig.from_preset(name)
    theirs = published_model(name)
    expected = HfEmbedConfig(**FAMILIES[theirs.config.model_type].config(theirs.config, theirs))
    assert stage_settings(preset) == stage_settings(expected)
    for field in ("vocab_size", "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(preset, field) == getattr(expected, field), field
    assert preset.tie_word_embeddings == theirs.config.tie_word_embeddings
    values = PUBLISHED[name][1]
    assert (preset.vocab_size, preset.hidden_size) == (values["vocab_size"], values["hidden_size"])
    if preset.position_embedding_type == "rotary":
        assert preset.rope_theta == values["rope_theta"]
        assert preset.head_dim == values.get("head_dim", values["hidden_size"] // values["num_attention_heads"])
        assert preset.rope_parameters["rope_type"] == values.get("rope_scaling", {}).get("rope_type", "default")


@pytest.mark.parametrize("name", PUBLISHED)
def test_family_presets_build_on_the_meta_device_with_the_right_shapes(name):
    preset = HfEmbedConfig.from_preset(name)
    with torch.device("meta"):
        model = HfEmbedModel(preset)
    wte = model.embeddings.wte.weight
    assert wte.is_meta and wte.shape == (preset.vocab_size, preset.hidden_size)
    names = {n for n, _ in model.named_parameters()}
    if name == "bloom-560m":
        assert names == {"embeddings.wte.weight", "embeddings.norm.weight", "embeddings.norm.bias"}
        assert model.embeddings.norm.weight.shape == (1024,)
    else:  # rotary: the frequencies are computed on the CPU, and equal the published model's own rotary embedding
        assert names == {"embeddings.wte.weight"}
        theirs = published_model(name)
        reference = type(theirs.rotary_emb)(theirs.config)  # built on the CPU this time
        position_ids = torch.tensor([[0, 1, 100, 8191, 8192, 20000]])
        cos, sin = model.embeddings.wpe(position_ids)
        ref_cos, ref_sin = reference(torch.zeros(1), position_ids)
        assert cos.shape == (1, 6, preset.head_dim) and torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin)
