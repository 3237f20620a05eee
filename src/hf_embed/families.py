"""The embedding stages of the transformers model families hf-embed reproduces, and how their weights map.

| family (`model_type`)   | their embedding stage                                | hf-embed config                   |
| ----------------------- | ---------------------------------------------------- | --------------------------------- |
| GPT-2 (`gpt2`)          | `wte(ids) + wpe(positions)`, dropout `embd_pdrop`    | `absolute`                        |
| Llama, Mistral, Qwen2   | `embed_tokens(ids)`; RoPE `(cos, sin)` for attention | `rotary`, their `rope_parameters` |
| Gemma (`gemma`)         | `embed_tokens(ids) * sqrt(hidden_size)` (its dtype)  | `rotary`, `"sqrt_hidden_size"`    |
| BLOOM (`bloom`)         | `LayerNorm(word_embeddings(ids))`; ALiBi in attention| `none`, `embedding_layernorm`     |

`HfEmbedModel.from_transformers` and `to_transformers` use this table; each row is checked against the family's own
model (`tests/test_families.py`: `hidden_states[0]` and the rotary `(cos, sin)`).

This file imports only torch, transformers, `configuration_hf_embed` and the standard library: `save_pretrained`
copies it next to the weights for `trust_remote_code` loading.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import initialization as init

from .configuration_hf_embed import SQRT_HIDDEN_SIZE, HfEmbedConfig

if TYPE_CHECKING:
    from torch import nn

# BLOOM's configs give no length (ALiBi extrapolates); 2048 is the length BLOOM was trained at (its paper, and
# `seq_length` in the released configs). hf-embed needs a limit; override it with `max_position_embeddings=`.
BLOOM_TRAINING_LENGTH = 2048


@dataclass(frozen=True)
class Family:
    """One family's embedding stage: its name, where its tables live, and the hf-embed config that reproduces it.

    Args:
        name: the transformers `model_type`.
        tables: hf-embed's `embeddings.<name>` -> the path of the same tensor in their base model.
        config: (their config, their base model) -> `HfEmbedConfig` keywords.
    """

    name: str
    tables: dict[str, str]  # hf-embed's `embeddings.<name>` -> the path of the same tensor in their base model
    config: Callable[[object, nn.Module], dict]  # (their config, their base model) -> HfEmbedConfig keywords


def _token_ids(config, vocab_size: int) -> dict:
    """bos/eos/pad ids that lie inside the table (Llama 3's list of eos ids kept as a list)."""
    ids = {}
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(config, name, None)
        values = value if isinstance(value, list) else [value]
        if value is not None and all(isinstance(v, int) and 0 <= v < vocab_size for v in values):
            ids[name] = value
    return ids


def _gpt2_config(config, base: Any) -> dict:
    vocab, positions = base.wte.num_embeddings, base.wpe.num_embeddings
    return {
        "vocab_size": vocab,
        "hidden_size": config.n_embd,
        "max_position_embeddings": positions,
        "position_embedding_type": "absolute",
        "embedding_dropout": float(config.embd_pdrop),
        "initializer_range": config.initializer_range,
        **_token_ids(config, vocab),
    }


def _rotary_config(config, base: Any) -> dict:
    """Llama, Mistral, Qwen2: the token table, and RoPE as their `rope_parameters` say (head_dim as they derive it)."""
    vocab = base.embed_tokens.num_embeddings
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {
        "vocab_size": vocab,
        "hidden_size": config.hidden_size,
        "max_position_embeddings": config.max_position_embeddings,
        "position_embedding_type": "rotary",
        "head_dim": head_dim,
        "rope_parameters": copy.deepcopy(config.rope_parameters),
        "embedding_dropout": 0.0,
        "initializer_range": config.initializer_range,
        **_token_ids(config, vocab),
    }


def _gemma_config(config, base: Any) -> dict:
    return {**_rotary_config(config, base), "embedding_multiplier": SQRT_HIDDEN_SIZE}


def _bloom_config(config, base: Any) -> dict:
    vocab = base.word_embeddings.num_embeddings
    return {
        "vocab_size": vocab,
        "hidden_size": config.hidden_size,
        "max_position_embeddings": getattr(config, "seq_length", None) or BLOOM_TRAINING_LENGTH,
        "position_embedding_type": "none",  # ALiBi: a bias inside attention, nothing at the embedding stage
        "embedding_layernorm": True,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "embedding_dropout": 0.0,  # BLOOM drops out nothing at the embedding stage
        "initializer_range": config.initializer_range,
        **_token_ids(config, vocab),
    }


_TOKEN_TABLE = {"wte.weight": "embed_tokens.weight"}
FAMILIES = {
    "gpt2": Family("GPT-2", {"wte.weight": "wte.weight", "wpe.weight": "wpe.weight"}, _gpt2_config),
    "llama": Family("Llama", _TOKEN_TABLE, _rotary_config),
    "mistral": Family("Mistral", _TOKEN_TABLE, _rotary_config),
    "qwen2": Family("Qwen2", _TOKEN_TABLE, _rotary_config),
    "gemma": Family("Gemma", _TOKEN_TABLE, _gemma_config),
    "bloom": Family(
        "BLOOM",
        {
            "wte.weight": "word_embeddings.weight",
            "norm.weight": "word_embeddings_layernorm.weight",
            "norm.bias": "word_embeddings_layernorm.bias",
        },
        _bloom_config,
    ),
}
SUPPORTED_MODEL_TYPES = tuple(FAMILIES)
# What must agree before tables move into a model: the fields that define the embedding stage's output.
STAGE_FIELDS = (
    "hidden_size",
    "position_embedding_type",
    "position_dim",
    "rope_parameters",
    "embedding_multiplier",
    "embedding_layernorm",
    "layer_norm_epsilon",
)


def family_of(config) -> Family:
    """The family of a transformers config, by `model_type`.

    Args:
        config: a transformers config.

    Returns:
        The `Family`.

    Raises:
        ValueError: for any other architecture, listing the supported ones.
    """
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        hint = ""
        if model_type == "hf_embed":
            hint = " (this is already an hf-embed model: load it with HfEmbedModel.from_pretrained)"
        raise ValueError(
            f"unsupported architecture {model_type!r}{hint}; hf-embed imports the embedding stages of: "
            + ", ".join(f"{family.name} ({name!r})" for name, family in FAMILIES.items())
        )
    return FAMILIES[model_type]


def base_model_of(model: nn.Module) -> nn.Module:
    """The transformers base model (`LlamaModel` inside `LlamaForCausalLM`, `transformer` inside GPT-2's LM).

    Args:
        model: a transformers model.

    Returns:
        Its `base_model`.

    Raises:
        TypeError: `model` is not a transformers model.
    """
    base = getattr(model, "base_model", None)
    if not hasattr(model, "config") or not isinstance(base, torch.nn.Module):
        raise TypeError(f"expected a transformers model (a PreTrainedModel), got {type(model).__name__}")
    return base


def stage_settings(config) -> dict:
    """The `STAGE_FIELDS` of a config (hf-embed's, or one built from a family), comparable with `==`.

    A dynamic RoPE's original length is what transformers takes from `max_position_embeddings`; hf-embed may hold a
    longer limit and record the original in `rope_parameters`, so it is written out on both sides.

    Args:
        config: an `HfEmbedConfig` (one of hf-embed's, or one built from a family's settings).

    Returns:
        `{field: value}` for every stage field.
    """
    settings: dict[str, Any] = {name: getattr(config, name, None) for name in STAGE_FIELDS}
    if config.position_embedding_type != "rotary":
        settings["position_dim"] = settings["rope_parameters"] = None
    elif settings["rope_parameters"]["rope_type"] == "dynamic":
        settings["rope_parameters"] = {
            "original_max_position_embeddings": config.max_position_embeddings,
            **settings["rope_parameters"],
        }
    if not config.embedding_layernorm:
        settings["layer_norm_epsilon"] = None
    return settings


def stage_from_transformers(model_class, model_or_path, **config_overrides):
    """`model_class` (an hf-embed model class) built from a transformers model's embedding stage, with its tables.

    `HfEmbedModel.from_transformers` documents the arguments and errors.
    """
    if isinstance(model_or_path, (str, bytes)) or hasattr(model_or_path, "__fspath__"):
        from transformers import AutoConfig, AutoModel

        family_of(AutoConfig.from_pretrained(model_or_path))  # an unsupported one fails before any weight loads
        model_or_path = AutoModel.from_pretrained(model_or_path)
    base = base_model_of(model_or_path)
    family = family_of(model_or_path.config)
    config = HfEmbedConfig(**{**family.config(model_or_path.config, base), **config_overrides})
    with init.no_init_weights():
        model = model_class(config)
    tensors = {ours: base.get_parameter(theirs).detach() for ours, theirs in family.tables.items()}
    model.embeddings.load_state_dict(tensors)
    return model.to(tensors["wte.weight"].dtype)


@torch.no_grad()
def stage_to_transformers(stage, model):
    """Write the tables of `stage` (an hf-embed model) into `model`, a transformers model of a family.

    `HfEmbedModel.to_transformers` documents the arguments and errors. Returns `model`.
    """
    base = base_model_of(model)
    family = family_of(model.config)
    theirs = HfEmbedConfig(**family.config(model.config, base))
    mine, other = stage_settings(stage.config), stage_settings(theirs)
    differences = [
        f"{name} {mine[name]!r} here, {other[name]!r} in {family.name}" for name in mine if mine[name] != other[name]
    ]
    if differences:
        raise ValueError(
            f"cannot write this model's tables into {type(model).__name__}: the embedding stages differ ("
            + "; ".join(differences)
            + ")"
        )
    for ours, their_name in family.tables.items():
        source, target = stage.embeddings.get_parameter(ours), base.get_parameter(their_name)
        if target.shape != source.shape:
            table = ours.split(".")[0]
            shapes = f"this model {tuple(source.shape)}, {family.name} {tuple(target.shape)}"
            raise ValueError(f"`{table}` shapes differ: {shapes}")
    for ours, their_name in family.tables.items():
        base.get_parameter(their_name).copy_(stage.embeddings.get_parameter(ours))
    return model


__all__ = [
    "FAMILIES",
    "STAGE_FIELDS",
    "SUPPORTED_MODEL_TYPES",
    "Family",
    "base_model_of",
    "family_of",
    "stage_from_transformers",
    "stage_settings",
    "stage_to_transformers",
]
