"""hf-embed: the embedding stage of a GPT-style model as a Hugging Face component.

text -> GPT-2 byte-level BPE ids -> token embeddings + position embeddings -> (batch, seq_len, hidden_size).

Importing the package is cheap: it imports neither torch nor transformers. The public names load on first
use (PEP 562, as transformers loads its own), and `AutoConfig`, `AutoModel` and `AutoModelForCausalLM` learn
the `hf_embed` model type as soon as transformers' Auto modules load (see `_auto_registration`), so
`import hf_embed; AutoModel.from_pretrained(folder)` works.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import _auto_registration

__version__ = "0.1.0"

# public name -> the submodule that defines it
_LAZY = {
    "HfEmbedConfig": "configuration_hf_embed",
    "available_presets": "configuration_hf_embed",
    "HfEmbedForCausalLM": "modeling_hf_embed",
    "HfEmbedModel": "modeling_hf_embed",
    "HfEmbedModelOutput": "modeling_hf_embed",
    "HfEmbedPreTrainedModel": "modeling_hf_embed",
    "HfEmbeddings": "embeddings",
    "apply_rotary_pos_emb": "position_embeddings",
    "position_ids_from_attention_mask": "position_embeddings",
    "SlidingWindowDataset": "data",
    "create_dataloader": "data",
    "gpt2_tokenizer": "tokenization",
}
# submodules reachable as attributes after a bare `import hf_embed`, as when the package imported them all
_SUBMODULES = frozenset(
    {
        "arguments",
        "atomic_write",
        "configuration_hf_embed",
        "data",
        "embeddings",
        "families",
        "fast_encoding",
        "hub",
        "loading",
        "modeling_hf_embed",
        "position_embeddings",
        "sample_text",
        "token_files",
        "tokenize_corpus",
        "tokenization",
        "validation",
        "visualize",
    }
)

if TYPE_CHECKING:  # what type checkers and editors see; at run time `__getattr__` imports on first use
    from .configuration_hf_embed import HfEmbedConfig, available_presets
    from .data import SlidingWindowDataset, create_dataloader
    from .embeddings import HfEmbeddings
    from .modeling_hf_embed import (
        HfEmbedForCausalLM,
        HfEmbedModel,
        HfEmbedModelOutput,
        HfEmbedPreTrainedModel,
    )
    from .position_embeddings import apply_rotary_pos_emb, position_ids_from_attention_mask
    from .tokenization import gpt2_tokenizer


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)  # the import also sets the attribute
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


__all__ = [
    "HfEmbedConfig",
    "HfEmbedForCausalLM",
    "HfEmbedModel",
    "HfEmbedModelOutput",
    "HfEmbedPreTrainedModel",
    "HfEmbeddings",
    "SlidingWindowDataset",
    "apply_rotary_pos_emb",
    "available_presets",
    "create_dataloader",
    "gpt2_tokenizer",
    "position_ids_from_attention_mask",
]

_auto_registration.install()
