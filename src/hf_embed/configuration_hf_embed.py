"""Configuration of the hf-embed embedding stage.

This file imports only transformers (and the standard library): `save_pretrained`
copies it next to the weights so that `trust_remote_code` loading works where the
`hf_embed` package is not installed.
"""

from __future__ import annotations

import json
from importlib import resources

from transformers import PretrainedConfig

MAX_TABLE_ELEMENTS = 2**32  # a table larger than this is a typo, not a model: refused before allocating
POSITION_EMBEDDING_TYPES = ("absolute", "sinusoidal", "rotary", "relative", "none")


def _preset_dir():
    """`hf_embed/presets/`: JSON files shipped inside the package (absent where only the model files were copied)."""
    return resources.files(__package__).joinpath("presets")


def available_presets() -> list[str]:
    """Names accepted by `HfEmbedConfig.from_preset`."""
    directory = _preset_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name[: -len(".json")] for p in directory.iterdir() if p.name.endswith(".json"))


class HfEmbedConfig(PretrainedConfig):
    r"""
    Configuration of [`HfEmbedModel`]: GPT-2-style token embeddings (`wte`) plus position information (`wpe`).

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
            `"none"`: token embeddings only.
        head_dim (`int`, *optional*): width of the rotary `cos`/`sin` and of the relative table; defaults to
            `hidden_size`. Must be even for `"rotary"`.
        rope_theta (`float`, defaults to 10000.0): rotary base.
        max_relative_distance (`int`, defaults to 128): distances are clipped to [-k, k]; the relative table has
            2k + 1 rows.
        embedding_dropout (`float`, defaults to 0.0): dropout on the sum, as GPT-2's `embd_pdrop` (alias).
        initializer_range (`float` or `None`, defaults to 0.02): std of GPT-2's normal init. `None` selects
            torch's own `nn.Embedding` init (normal(0, 1)), so that `torch.manual_seed(s)` then building the
            model draws the same token table as `torch.manual_seed(s); nn.Embedding(V, D)`.
        sparse_gradients (`bool`, defaults to False): give the token table sparse gradients
            (`nn.Embedding(sparse=True)`); pair it with an optimizer that accepts them (`torch.optim.SparseAdam`,
            `torch.optim.SGD`).
        bos_token_id, eos_token_id, pad_token_id (`int`, *optional*): special token ids; the GPT-2 presets set
            `<|endoftext|>` (50256) as bos and eos.
    """

    model_type = "hf_embed"
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
        rope_theta: float = 10000.0,
        max_relative_distance: int = 128,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
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
        self.rope_theta = rope_theta
        self.max_relative_distance = max_relative_distance
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.tie_word_embeddings = tie_word_embeddings
        self._check()  # first: transformers' own validators fail obscurely on values of the wrong type
        super().__init__(**kwargs)

    def _check(self) -> None:
        for name in ("vocab_size", "hidden_size", "max_position_embeddings", "max_relative_distance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        d = self.head_dim
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1):
            raise ValueError(f"`head_dim` must be a positive integer or None, got {d!r}")
        if self.position_embedding_type == "rotary" and self.position_dim % 2:
            raise ValueError(
                f"rotary embeddings rotate pairs of dimensions: `head_dim` must be even, got {self.position_dim}"
            )
        theta = self.rope_theta
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not theta > 1:
            raise ValueError(f"`rope_theta` must be a number > 1, got {theta!r}")
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
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"`{name}` must be an integer or None, got {value!r}")
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"`{name}`={value} is outside the vocabulary (size {self.vocab_size})")

    @property
    def position_dim(self) -> int:
        """Width of the rotary `cos`/`sin` and of the relative table: `head_dim`, else `hidden_size`."""
        return self.head_dim if self.head_dim is not None else self.hidden_size

    @classmethod
    def from_preset(cls, name: str, **overrides) -> HfEmbedConfig:
        """A shipped preset (`gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`, `book-ch2`, `tiny`), with overrides."""
        path = _preset_dir().joinpath(f"{name}.json")
        if not path.is_file():
            raise ValueError(f"unknown preset {name!r}; available: {', '.join(available_presets())}")
        values = json.loads(path.read_text(encoding="utf-8"))
        values.pop("model_type", None)
        values.update(overrides)
        return cls(**values)


__all__ = ["POSITION_EMBEDDING_TYPES", "HfEmbedConfig", "available_presets"]
