"""hf-embed: the embedding stage of a GPT-style model as a Hugging Face component.

text -> GPT-2 byte-level BPE ids -> token embeddings + position embeddings -> (batch, seq_len, hidden_size).
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .configuration_hf_embed import HfEmbedConfig, available_presets
from .data import SlidingWindowDataset, create_dataloader
from .modeling_hf_embed import (
    HfEmbeddings,
    HfEmbedForCausalLM,
    HfEmbedModel,
    HfEmbedModelOutput,
    HfEmbedPreTrainedModel,
    apply_rotary_pos_emb,
    position_ids_from_attention_mask,
)
from .tokenization import gpt2_tokenizer

__version__ = "0.1.0"

AutoConfig.register(HfEmbedConfig.model_type, HfEmbedConfig, exist_ok=True)
AutoModel.register(HfEmbedConfig, HfEmbedModel, exist_ok=True)
AutoModelForCausalLM.register(HfEmbedConfig, HfEmbedForCausalLM, exist_ok=True)

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
