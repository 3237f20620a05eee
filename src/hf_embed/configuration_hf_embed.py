"""Configuration of the hf-embed embedding stage.

This file imports only transformers (and the standard library): `save_pretrained`
copies it next to the weights so that `trust_remote_code` loading works where the
`hf_embed` package is not installed.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

import torch
from transformers import PretrainedConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from .arguments import check_positive_int

# The settings every transformers config has (`PretrainedConfig`'s own: output_hidden_states, return_dict,
# id2label, problem_type, ...) and the loading options a config carries; `from_preset` accepts them as it does
# hf-embed's, and refuses any other name.
_TRANSFORMERS_SETTINGS = frozenset(
    {*PretrainedConfig().to_dict(), "attn_implementation", "num_labels", "torch_dtype", "dtype"}
) - {"model_type", "transformers_version", "architectures", "_name_or_path"}
MAX_TABLE_ELEMENTS = 2**32  # a table larger than this is a typo, not a model: refused before allocating
POSITION_EMBEDDING_TYPES = ("absolute", "sinusoidal", "rotary", "relative", "none")
# "default" is plain RoPE (each transformers model defines it; hf-embed uses Llama's); the others are the scaling
# rules of the installed transformers (`ROPE_INIT_FUNCTIONS`: linear, dynamic, yarn, longrope, llama3, ...).
ROPE_TYPES = ("default", *ROPE_INIT_FUNCTIONS)
SQRT_HIDDEN_SIZE = "sqrt_hidden_size"  # `embedding_multiplier` value: Gemma's sqrt(hidden_size), in the model dtype
_UNSET = object()


def _preset_dir():
    """`hf_embed/presets/`: JSON files shipped inside the package (absent where only the model files were copied)."""
    return resources.files(__package__).joinpath("presets")


def available_presets() -> list[str]:
    """Names accepted by `HfEmbedConfig.from_preset`.

    Returns:
        The preset names, sorted (the JSON files shipped in `hf_embed/presets/`).
    """
    directory = _preset_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name[: -len(".json")] for p in directory.iterdir() if p.name.endswith(".json"))


def rope_init_config(
    rope_parameters: Mapping[str, Any], *, head_dim: int, max_position_embeddings: int
) -> PretrainedConfig:
    """A transformers config holding what `ROPE_INIT_FUNCTIONS` and transformers' `validate_rope` read.

    transformers' RoPE functions take a model config (`rope_parameters`, `head_dim`, `max_position_embeddings`);
    this is that config for one rotary scheme. `max_position_embeddings` means what it means to transformers for
    each type: the extended length for yarn and longrope (whose `factor` may default to extended / original), but
    the original length for dynamic NTK, which scales past it. hf-embed's own limit may exceed a dynamic model's
    original length, which `rope_parameters["original_max_position_embeddings"]` then records.
    """
    parameters = dict(rope_parameters)
    if parameters.get("rope_type") == "dynamic":
        max_position_embeddings = parameters.pop("original_max_position_embeddings", max_position_embeddings)
    view = PretrainedConfig()
    view.hidden_size, view.num_attention_heads, view.head_dim = head_dim, 1, head_dim
    view.max_position_embeddings = max_position_embeddings
    view.rope_parameters = parameters
    return view


class HfEmbedConfig(PretrainedConfig):
    r"""
    Configuration of [`HfEmbedModel`]: token embeddings (`wte`) plus position information (`wpe`), GPT-2's by
    default, with the options other families' embedding stages use (a multiplier, a LayerNorm, scaled RoPE).

    Args:
        vocab_size (`int`, defaults to 50257): rows of the token table (GPT-2's byte-level BPE vocabulary).
        hidden_size (`int`, defaults to 768): embedding width. GPT-2 alias: `n_embd`.
        max_position_embeddings (`int`, defaults to 1024): longest sequence (past length included).
            GPT-2 alias: `n_positions`.
        position_embedding_type (`str`, defaults to `"absolute"`): how positions are encoded, one module each:
            `"absolute"`: GPT-2's learned table, added to the token embeddings;
            `"sinusoidal"`: the fixed sin/cos table of Vaswani et al. (2017), added;
            `"rotary"`: RoPE (Su et al. 2021); tokens pass unchanged, the output carries `(cos, sin)` for attention;
            `"relative"`: learned embeddings of clipped key-minus-query distances (Shaw et al. 2018); tokens pass
            unchanged, the output carries the `(q_len, k_len, dim)` embeddings for attention;
            `"none"`: token embeddings only (BLOOM, whose ALiBi biases live in attention).
        head_dim (`int`, *optional*): width of the rotary `cos`/`sin` and of the relative table; defaults to
            `hidden_size`. Must be even for `"rotary"`.
        rope_parameters (`dict`, *optional*): the rotary scheme's settings, as transformers v5 configs store them:
            `{"rope_type": "default", "rope_theta": 10000.0}` by default; `rope_type` is one of `ROPE_TYPES`
            ("default" and every scaling rule of the installed transformers: linear, dynamic, yarn, longrope,
            llama3, ...), with that type's keys (`factor`, `original_max_position_embeddings`, ...). transformers'
            `ROPE_INIT_FUNCTIONS` compute the frequencies from it. `rope_theta=` (older configs) and `rope_scaling=`
            (transformers' older name) are accepted and stored here; `config.rope_theta` reads and sets the base.
        max_relative_distance (`int`, defaults to 128): distances are clipped to [-k, k]; the relative table has
            2k + 1 rows.
        embedding_multiplier (`float` or `"sqrt_hidden_size"`, defaults to 1.0): the token embeddings are
            multiplied by it before positions are added. A number multiplies as transformers' Granite does;
            `"sqrt_hidden_size"` is Gemma's sqrt(hidden_size), rounded to the model's dtype first as Gemma's
            `embed_scale` is (so 45.25, not 45.2548, for hidden size 2048 in bfloat16).
        embedding_layernorm (`bool`, defaults to False): a LayerNorm (`embeddings.norm`) on the sum, before dropout,
            as BLOOM's `word_embeddings_layernorm`.
        layer_norm_epsilon (`float`, defaults to 1e-5): that LayerNorm's epsilon (BLOOM's and GPT-2's name).
        embedding_dropout (`float`, defaults to 0.0): dropout on the sum, as GPT-2's `embd_pdrop` (alias).
        initializer_range (`float` or `None`, defaults to 0.02): std of GPT-2's normal init. `None` selects
            torch's own `nn.Embedding` init (normal(0, 1)), so that `torch.manual_seed(s)` then building the
            model draws the same token table as `torch.manual_seed(s); nn.Embedding(V, D)`.
        sparse_gradients (`bool`, defaults to False): give the token table sparse gradients
            (`nn.Embedding(sparse=True)`); pair it with an optimizer that accepts them (`torch.optim.SparseAdam`,
            `torch.optim.SGD`).
        unpadded_vocab_size (`int`, *optional*): the tokenizer's vocabulary when the table is padded past it (to a
            multiple of 64 for speed: `resize_token_embeddings(pad_to_multiple_of=64)` records it); the causal LM
            gives the padding rows no probability. `None`: no padding rows. transformers' name (Inkling).
        bos_token_id, eos_token_id, pad_token_id (`int`, *optional*): special token ids (`eos_token_id` may be a
            list, as Llama 3's); the GPT-2 presets set `<|endoftext|>` (50256) as bos and eos.
    """

    model_type = "hf_embed"
    # What `register_for_auto_class()` sets: `save_pretrained` writes `auto_map` and copies the model files, so
    # `AutoConfig.from_pretrained(folder, trust_remote_code=True)` works without this package. A class attribute,
    # not that call: the call imports transformers' Auto modules, which a model file must not do at import time.
    _auto_class = "AutoConfig"
    attribute_map = {
        "n_embd": "hidden_size",
        "n_positions": "max_position_embeddings",
        "embd_pdrop": "embedding_dropout",
    }
    # Tensor parallel: the token table is split over the vocabulary (each rank gathers its rows and
    # the partial outputs are summed); the position table is small and stays replicated.
    base_model_tp_plan = {"embeddings.wte": "embedding_rowwise"}
    base_model_pp_plan = {"embeddings": (["input_ids"], ["hidden_states"])}
    base_model_fsdp_plan = {"embeddings": "free_full_weight"}

    def __init__(
        self,
        vocab_size: int = 50257,
        hidden_size: int = 768,
        max_position_embeddings: int = 1024,
        position_embedding_type: str = "absolute",
        embedding_dropout: float = 0.0,
        initializer_range: float | None = 0.02,
        sparse_gradients: bool = False,
        head_dim: int | None = None,
        rope_parameters: dict | None = None,
        max_relative_distance: int = 128,
        embedding_multiplier: float | str = 1.0,
        embedding_layernorm: bool = False,
        layer_norm_epsilon: float = 1e-5,
        unpadded_vocab_size: int | None = None,
        bos_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        # GPT-2 names given as keywords; resolved here so the values are checked before transformers sees them
        hidden_size = kwargs.pop("n_embd", hidden_size)
        max_position_embeddings = kwargs.pop("n_positions", max_position_embeddings)
        embedding_dropout = kwargs.pop("embd_pdrop", embedding_dropout)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.position_embedding_type = position_embedding_type
        self.embedding_dropout = embedding_dropout
        self.initializer_range = initializer_range
        self.sparse_gradients = sparse_gradients
        self.head_dim = head_dim
        self.max_relative_distance = max_relative_distance
        self.embedding_multiplier = embedding_multiplier
        self.embedding_layernorm = embedding_layernorm
        self.layer_norm_epsilon = layer_norm_epsilon
        self.unpadded_vocab_size = unpadded_vocab_size
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.tie_word_embeddings = tie_word_embeddings
        rope = {"rope_theta": kwargs.pop("rope_theta", _UNSET), "rope_scaling": kwargs.pop("rope_scaling", None)}
        if position_embedding_type == "rotary":
            self.rope_parameters = _standard_rope_parameters(
                rope_parameters, **rope, max_position_embeddings=max_position_embeddings
            )
            if self.rope_parameters["rope_type"] == "dynamic":  # hf-embed's record of the original length
                self.ignore_keys_at_rope_validation = {"original_max_position_embeddings"}
        elif rope_parameters is not None or rope["rope_scaling"] is not None:
            raise ValueError(
                f"`rope_parameters` are for position_embedding_type='rotary', not {position_embedding_type!r}"
            )
        # Other schemes keep no RoPE settings (as transformers' GPT-2 and BLOOM configs); a `rope_theta` beside them
        # (every config saved before `rope_parameters`) has no meaning there and is dropped.
        self._check()  # first: transformers' own validators fail obscurely on values of the wrong type
        super().__init__(**kwargs)

    @property
    def rope_theta(self) -> float | None:
        """The rotary base, `rope_parameters["rope_theta"]` (the field of configs before transformers v5); None for
        a scheme other than "rotary"."""
        rope_parameters = self.__dict__.get("rope_parameters")
        return None if rope_parameters is None else rope_parameters.get("rope_theta")

    @rope_theta.setter
    def rope_theta(self, value: float) -> None:
        if "rope_parameters" not in self.__dict__:
            raise ValueError(
                f"`rope_theta` is for position_embedding_type='rotary', not {self.position_embedding_type!r}"
            )
        self.rope_parameters = {**self.rope_parameters, "rope_theta": value}

    def _check(self) -> None:
        for name in ("vocab_size", "hidden_size", "max_position_embeddings", "max_relative_distance"):
            check_positive_int(name, getattr(self, name))
        if self.head_dim is not None:
            check_positive_int("head_dim", self.head_dim, why="or None: the hidden size")
        if self.position_embedding_type == "rotary":
            if self.position_dim % 2:
                raise ValueError(
                    f"rotary embeddings rotate pairs of dimensions: `head_dim` must be even, got {self.position_dim}"
                )
            _check_rope_parameters(self.rope_parameters, self.position_dim, self.max_position_embeddings)
        tables = [("vocab_size", self.vocab_size, self.hidden_size)]
        if self.position_embedding_type in ("absolute", "sinusoidal"):
            tables.append(("max_position_embeddings", self.max_position_embeddings, self.hidden_size))
        for name, rows, width in tables:
            if rows * width > MAX_TABLE_ELEMENTS:
                raise ValueError(
                    f"`{name}`={rows} with hidden_size={width} asks for a {rows} x {width} table ({rows * width} "
                    f"values), more than the limit of {MAX_TABLE_ELEMENTS} (16 GiB in float32)"
                )
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"`position_embedding_type` must be one of {POSITION_EMBEDDING_TYPES}, "
                f"got {self.position_embedding_type!r}"
            )
        p = self.embedding_dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"`embedding_dropout` must be a float in [0, 1), got {p!r}")
        r = self.initializer_range
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 0):
            raise ValueError(f"`initializer_range` must be a positive float or None, got {r!r}")
        m = self.embedding_multiplier
        if m != SQRT_HIDDEN_SIZE and not _is_positive_number(m):
            raise ValueError(f"`embedding_multiplier` must be a positive number or {SQRT_HIDDEN_SIZE!r}, got {m!r}")
        if not isinstance(self.embedding_layernorm, bool):
            raise ValueError(f"`embedding_layernorm` must be True or False, got {self.embedding_layernorm!r}")
        if not _is_positive_number(self.layer_norm_epsilon):
            raise ValueError(f"`layer_norm_epsilon` must be a positive number, got {self.layer_norm_epsilon!r}")
        if self.unpadded_vocab_size is not None:
            why = f"the tokenizer's ids, at most vocab_size={self.vocab_size}; or None"
            check_positive_int("unpadded_vocab_size", self.unpadded_vocab_size, below=self.vocab_size + 1, why=why)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            ids = value if name == "eos_token_id" and isinstance(value, list) and value else [value]
            for token_id in ids:
                if token_id is not None:
                    why = f"an id of the vocabulary, size {self.real_vocab_size}; or None"
                    check_positive_int(name, token_id, minimum=0, below=self.real_vocab_size, why=why)

    def _validate_longrope_rope_parameters(
        self, rope_parameters: Mapping[str, Any], ignore_keys: set[str] | None = None
    ) -> None:
        # transformers' `validate_rope` (run on every config it builds and saves) dispatches to this by name; its
        # longrope rule derives head_dim from attention heads, which an embedding stage has none of: run it on the
        # config transformers' RoPE functions read instead.
        view = rope_init_config(
            rope_parameters, head_dim=self.position_dim, max_position_embeddings=self.max_position_embeddings
        )
        view._validate_longrope_rope_parameters(dict(rope_parameters), ignore_keys=ignore_keys)

    @property
    def position_dim(self) -> int:
        """Width of the rotary `cos`/`sin` and of the relative table: `head_dim`, else `hidden_size`."""
        return self.head_dim if self.head_dim is not None else self.hidden_size

    @property
    def real_vocab_size(self) -> int:
        """The ids a tokenizer can produce: `unpadded_vocab_size`, else `vocab_size` (no padding rows)."""
        return self.unpadded_vocab_size if self.unpadded_vocab_size is not None else self.vocab_size

    @classmethod
    def from_preset(cls, name: str | os.PathLike, **overrides) -> HfEmbedConfig:
        """A shipped preset, or a JSON file of settings, with overrides.

        Args:
            name: a preset name (`available_presets()`: GPT-2's sizes, `book-ch2`, `tiny`, and the embedding stages
                of Llama 3, Mistral, Qwen2, Gemma, BLOOM), or the path of a `.json` file that holds the same kind of
                settings (the repository's `configs/` has examples; a saved model's `config.json` is one too).
            **overrides: settings that replace the preset's. `rope_theta=` replaces the RoPE base alone.

        Returns:
            The config.

        Raises:
            ValueError: an unknown preset (the names are listed), a file that is not a JSON object of hf-embed
                settings, or a setting hf-embed does not have (a typo would otherwise be kept and ignored).
            FileNotFoundError: a `.json` path that does not exist.
        """
        if str(name).endswith(".json"):
            path, where = Path(name), f"{name}"
            if not path.is_file():
                raise FileNotFoundError(f"{name}: no such config file")
        else:
            path, where = _preset_dir().joinpath(f"{name}.json"), f"preset {name!r}"
            if not path.is_file():
                raise ValueError(
                    f"unknown preset {name!r}; available: {', '.join(available_presets())} (or a .json file)"
                )
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{where}: expected a JSON object of settings, got {type(values).__name__}")
        model_type = values.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(f"{where}: model_type is {model_type!r}, not {cls.model_type!r}")
        for key in ("architectures", "auto_map", "transformers_version", "dtype", "torch_dtype"):  # a save's records
            values.pop(key, None)
        cls._check_setting_names(values, where)
        cls._check_setting_names(overrides, "overrides")
        if "rope_theta" in overrides and "rope_parameters" in values and "rope_parameters" not in overrides:
            values["rope_parameters"] = {**values["rope_parameters"], "rope_theta": overrides.pop("rope_theta")}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def _check_setting_names(cls, values: dict, where: str) -> None:
        own = {*inspect.signature(cls.__init__).parameters, *cls.attribute_map, "rope_theta", "rope_scaling"}
        own -= {"self", "kwargs"}
        unknown = sorted(set(values) - own - _TRANSFORMERS_SETTINGS)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(own), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{where}: unknown setting {unknown[0]!r}{hint}; hf-embed's settings: {', '.join(sorted(own))} "
                "(and transformers' own, such as output_hidden_states)"
            )


def _is_positive_number(value: object) -> TypeGuard[float]:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _standard_rope_parameters(rope_parameters, *, rope_theta, rope_scaling, max_position_embeddings) -> dict:
    """`rope_parameters` as transformers v5 stores it: a new dict with `rope_type` and `rope_theta` always set.

    Takes the older spellings too: `rope_theta=` beside it (configs saved before v5), `rope_scaling=` instead of
    it, and `"type"` for `"rope_type"`. As transformers' `standardize_rope_params`, llama3, yarn and longrope get
    `original_max_position_embeddings` (defaulting to `max_position_embeddings`).
    """
    if rope_scaling is not None and rope_parameters is not None:
        raise ValueError("give `rope_parameters` or its older name `rope_scaling`, not both")
    parameters = rope_parameters if rope_parameters is not None else rope_scaling
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ValueError(f"`rope_parameters` must be a dict such as {{'rope_type': 'default'}}, got {parameters!r}")
    parameters = dict(parameters)
    if "type" in parameters:  # transformers' name before `rope_type`
        parameters.setdefault("rope_type", parameters.pop("type"))
    parameters.setdefault("rope_type", "default")
    if rope_theta is not _UNSET:
        theta = parameters.setdefault("rope_theta", rope_theta)
        if theta != rope_theta:
            raise ValueError(f"`rope_theta`={rope_theta!r} disagrees with `rope_parameters['rope_theta']`={theta!r}")
    parameters.setdefault("rope_theta", 10000.0)
    if parameters["rope_type"] in ("llama3", "yarn", "longrope"):
        parameters.setdefault("original_max_position_embeddings", max_position_embeddings)
    return parameters


def _check_rope_parameters(parameters: dict, head_dim: int, max_position_embeddings: int) -> None:
    """A `ValueError` for `rope_parameters` that transformers' RoPE functions cannot compute (a missing key, which
    they index) and for values transformers only warns about but whose numbers would be wrong (a factor list of the
    wrong length broadcasts silently, equal llama3 frequency factors divide by zero). transformers' own rules
    (`validate_rope`, with its warnings) run afterwards, when `PretrainedConfig.__init__` validates the config."""
    if not isinstance(parameters, dict) or "rope_type" not in parameters or "rope_theta" not in parameters:
        raise ValueError(f"`rope_parameters` must be a dict with 'rope_type' and 'rope_theta', got {parameters!r}")
    rope_type = parameters["rope_type"]
    if rope_type not in ROPE_TYPES:
        raise ValueError(f"`rope_parameters['rope_type']` must be one of {ROPE_TYPES}, got {rope_type!r}")
    theta = parameters["rope_theta"]
    if not _is_positive_number(theta) or not theta > 1:
        raise ValueError(f"`rope_theta` must be a number > 1, got {theta!r}")
    partial = parameters.get("partial_rotary_factor", 1.0)
    if partial != 1.0 and rope_type != "proportional":
        raise ValueError(
            f"`rope_parameters['partial_rotary_factor']`={partial!r}: hf-embed's rotary cos/sin span the whole "
            "head_dim (partial rotation is supported by rope_type 'proportional')"
        )
    if rope_type == "default":
        return
    for key in ("factor", "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim"):
        value = parameters.get(key)
        if value is not None and not _is_positive_number(value):
            raise ValueError(f"`rope_parameters['{key}']` must be a positive number, got {value!r}")
    original = parameters.get("original_max_position_embeddings")
    if original is not None:
        check_positive_int("rope_parameters['original_max_position_embeddings']", original)
    if rope_type == "llama3":
        low, high = parameters.get("low_freq_factor"), parameters.get("high_freq_factor")
        if (low is not None or high is not None) and not (
            _is_positive_number(low) and _is_positive_number(high) and high > low
        ):
            raise ValueError(
                f"llama3 RoPE needs numbers `high_freq_factor` > `low_freq_factor`, got {high!r} and {low!r}"
            )
    if rope_type == "longrope":
        for key in ("short_factor", "long_factor"):
            factors = parameters.get(key)
            if factors is not None and (
                not isinstance(factors, list)
                or len(factors) != head_dim // 2
                or not all(_is_positive_number(f) for f in factors)
            ):
                raise ValueError(
                    f"`rope_parameters['{key}']` must be a list of head_dim / 2 = {head_dim // 2} positive numbers, "
                    f"got {factors!r}"
                )
    view = rope_init_config(parameters, head_dim=head_dim, max_position_embeddings=max_position_embeddings)
    try:
        with torch.device("cpu"):
            ROPE_INIT_FUNCTIONS[rope_type](view, None)  # dim / 2 numbers: what the rotary scheme computes
    except KeyError as error:
        raise ValueError(
            f"`rope_parameters` for rope_type {rope_type!r} need {error.args[0]!r} (transformers' "
            f"ROPE_INIT_FUNCTIONS[{rope_type!r}] reads it), got {parameters!r}"
        ) from None


__all__ = ["POSITION_EMBEDDING_TYPES", "ROPE_TYPES", "HfEmbedConfig", "available_presets", "rope_init_config"]
