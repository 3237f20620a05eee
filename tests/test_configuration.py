"""HfEmbedConfig: fields, GPT-2 aliases, validation, presets."""

from __future__ import annotations

import pytest
from transformers import AutoConfig

from hf_embed import HfEmbedConfig, available_presets

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
    with pytest.raises(ValueError, match=r"unknown preset 'gpt5'; available: book-ch2, gpt2"):
        HfEmbedConfig.from_preset("gpt5")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vocab_size": 0}, r"`vocab_size` must be a positive integer, got 0"),
        ({"hidden_size": 12.5}, r"`hidden_size` must be a positive integer, got 12.5"),
        ({"max_position_embeddings": -4}, r"`max_position_embeddings` must be a positive integer, got -4"),
        ({"n_embd": True}, r"`hidden_size` must be a positive integer, got True"),
        ({"position_embedding_type": "alibi"}, r"must be one of \('absolute', .*\), got 'alibi'"),
        ({"embedding_dropout": 1.0}, r"`embedding_dropout` must be a float in \[0, 1\), got 1.0"),
        ({"initializer_range": -0.02}, r"`initializer_range` must be a positive float or None, got -0.02"),
        ({"vocab_size": 99, "eos_token_id": 50256}, r"`eos_token_id`=50256 is outside the vocabulary \(size 99\)"),
    ],
)
def test_validation_names_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HfEmbedConfig(**kwargs)
