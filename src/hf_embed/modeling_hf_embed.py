"""The embedding stage of a GPT-style model: token embeddings plus position information.

Shapes in comments use: B batch size, T sequence length (new tokens), P past length,
D hidden size, V vocabulary size.

This file imports only torch, transformers and `configuration_hf_embed`: `save_pretrained`
copies it next to the weights for `trust_remote_code` loading.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput

from .configuration_hf_embed import HfEmbedConfig

# --------------------------------------------------------------------------- validation
# Every check runs before any kernel and names the bad value and the limit. On CUDA the
# value checks are asynchronous device asserts: validating must never add a host sync.


def _first_bad(values: torch.Tensor, low: int, high: int) -> tuple[int, list[int]] | None:
    """The first element outside [low, high) and its index, or None. Host tensors only."""
    if values.numel() == 0:
        return None
    lo, hi = torch.aminmax(values)
    if lo.item() >= low and hi.item() < high:
        return None
    bad = ((values < low) | (values >= high)).nonzero()[0]
    return int(values[tuple(bad)]), bad.tolist()


def _check_range(values: torch.Tensor, high: int, what: str, limit: str) -> None:
    if values.device.type in ("cpu", "meta"):
        if values.device.type == "cpu" and (bad := _first_bad(values, 0, high)) is not None:
            value, index = bad
            raise ValueError(f"{what} {value} at {index} is outside {limit}")
    else:
        torch._assert_async(((values >= 0) & (values < high)).all(), f"a {what} is outside {limit}")


def _check_integer_tensor(name: str, value: object) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise TypeError(f"`{name}` must hold integers (torch.int64 or torch.int32), got {value.dtype}")


def _check_shape(name: str, value: torch.Tensor, expected: tuple[int, ...]) -> None:
    if tuple(value.shape) != expected:
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(value.shape)}")


# --------------------------------------------------------------------------- positions


def _embedding(num: int, dim: int, *, sparse: bool = False) -> nn.Embedding:
    """An `nn.Embedding` whose table is left uninitialized for `_init_weights` to fill.

    Skipping torch's own init avoids drawing a table that is overwritten at once, and keeps
    the random stream equal to a lone `nn.Embedding(num, dim)` when `initializer_range=None`.
    """
    return nn.Embedding(num, dim, sparse=sparse, _weight=torch.empty(num, dim))


class LearnedPositionEmbedding(nn.Embedding):
    """GPT-2's absolute positions: one learned vector per position, added to the token embeddings."""

    def add_positions(self, hidden_states: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        # (B, T, D) + (B or 1, T, D)
        return hidden_states + self(position_ids)


class NoPositionEmbedding(nn.Module):
    """No position information: the token embeddings pass through unchanged."""

    def add_positions(self, hidden_states: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        return hidden_states


def _position_module(config: HfEmbedConfig) -> nn.Module:
    if config.position_embedding_type == "absolute":
        return LearnedPositionEmbedding(
            config.max_position_embeddings,
            config.hidden_size,
            _weight=torch.empty(config.max_position_embeddings, config.hidden_size),
        )
    return NoPositionEmbedding()


def position_ids_from_attention_mask(attention_mask: torch.Tensor, seq_len: int, past_length: int) -> torch.Tensor:
    """Positions that skip left padding: the n-th real token of a row gets position n.

    `attention_mask` is (B, T) for the new tokens or (B, P + T) with the past included;
    pads get position 0 (their outputs are meant to be masked out). Returns (B, T) int64.
    """
    positions = attention_mask.long().cumsum(-1) - 1  # (B, T) or (B, P + T)
    positions.clamp_(min=0)
    if attention_mask.shape[-1] == seq_len:
        return positions + past_length
    return positions[:, -seq_len:]


class HfEmbeddings(nn.Module):
    """Token embeddings (`wte`) plus position information (`wpe`), then dropout.

    `dropout(wte(input_ids) + wpe(position_ids))`: equal (eval mode, same weights) to the
    embedding stage of transformers' `GPT2Model`. A plain `nn.Module`, usable inside any model.
    """

    def __init__(self, config: HfEmbedConfig):
        super().__init__()
        self.vocab_size = config.vocab_size
        self.hidden_size = config.hidden_size
        self.max_positions = config.max_position_embeddings
        self.wte = _embedding(config.vocab_size, config.hidden_size, sparse=config.sparse_gradients)
        self.wpe = _position_module(config)
        self.drop = nn.Dropout(config.embedding_dropout)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        past_key_values_length: int = 0,
    ) -> torch.Tensor:
        """Embed `input_ids` (B, T) or take `inputs_embeds` (B, T, D); returns (B, T, D)."""
        batch, seq_len = self._check_inputs(input_ids, inputs_embeds)
        device = (input_ids if input_ids is not None else inputs_embeds).device
        position_ids = self._position_ids(batch, seq_len, device, position_ids, attention_mask, past_key_values_length)

        if inputs_embeds is None:
            if input_ids.dtype not in (torch.int64, torch.int32):
                input_ids = input_ids.long()
            inputs_embeds = self.wte(input_ids)  # (B, T, D)
        return self.drop(self.wpe.add_positions(inputs_embeds, position_ids))

    def _check_inputs(self, input_ids, inputs_embeds) -> tuple[int, int]:
        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("You cannot specify both `input_ids` and `inputs_embeds` at the same time")
        if input_ids is None and inputs_embeds is None:
            raise ValueError("You have to specify either `input_ids` or `inputs_embeds`")
        if input_ids is not None:
            _check_integer_tensor("input_ids", input_ids)
            if input_ids.dim() != 2:
                raise ValueError(
                    f"`input_ids` must have rank 2 (batch, seq_len), got rank {input_ids.dim()} "
                    f"with shape {tuple(input_ids.shape)}"
                )
            _check_range(input_ids, self.vocab_size, "token id", f"the vocabulary (size {self.vocab_size})")
            return tuple(input_ids.shape)
        if not isinstance(inputs_embeds, torch.Tensor):
            raise TypeError(f"`inputs_embeds` must be a torch.Tensor, got {type(inputs_embeds).__name__}")
        if not inputs_embeds.is_floating_point():
            raise TypeError(f"`inputs_embeds` must be floating point, got {inputs_embeds.dtype}")
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.hidden_size:
            raise ValueError(
                f"`inputs_embeds` must have shape (batch, seq_len, {self.hidden_size}), "
                f"got {tuple(inputs_embeds.shape)}"
            )
        return tuple(inputs_embeds.shape[:2])

    def _position_ids(self, batch, seq_len, device, position_ids, attention_mask, past_length) -> torch.Tensor:
        """Resolve positions to a (B or 1, T) int64 tensor, checked against the table size."""
        if isinstance(past_length, bool) or not isinstance(past_length, int) or past_length < 0:
            raise ValueError(f"`past_key_values_length` must be a non-negative int, got {past_length!r}")
        if position_ids is not None:
            _check_integer_tensor("position_ids", position_ids)
            if position_ids.dim() == 1:
                position_ids = position_ids.unsqueeze(0)
            if position_ids.dim() != 2 or position_ids.shape[-1] != seq_len or position_ids.shape[0] not in (1, batch):
                raise ValueError(
                    f"`position_ids` must have shape ({batch}, {seq_len}) or (1, {seq_len}), "
                    f"got {tuple(position_ids.shape)}"
                )
            _check_range(
                position_ids, self.max_positions, "position id", f"max_position_embeddings ({self.max_positions})"
            )
            return position_ids.long()

        if past_length + seq_len > self.max_positions:
            raise ValueError(
                f"sequence length {seq_len} (plus past length {past_length}) exceeds "
                f"max_position_embeddings ({self.max_positions})"
            )
        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor):
                raise TypeError(f"`attention_mask` must be a torch.Tensor, got {type(attention_mask).__name__}")
            if (
                attention_mask.dim() != 2
                or attention_mask.shape[0] != batch
                or attention_mask.shape[1]
                not in (
                    seq_len,
                    past_length + seq_len,
                )
            ):
                raise ValueError(
                    f"`attention_mask` must have shape ({batch}, {seq_len}) or ({batch}, {past_length + seq_len}), "
                    f"got {tuple(attention_mask.shape)}"
                )
            return position_ids_from_attention_mask(attention_mask, seq_len, past_length)
        return torch.arange(past_length, past_length + seq_len, device=device).unsqueeze(0)  # (1, T)


# --------------------------------------------------------------------------- the model


@dataclass
class HfEmbedModelOutput(BaseModelOutput):
    """`BaseModelOutput` whose `last_hidden_state` is the embedding stage's output (B, T, D)."""


class HfEmbedPreTrainedModel(PreTrainedModel):
    config_class = HfEmbedConfig
    config: HfEmbedConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _input_embed_layer = "wte"
    _no_split_modules = ["HfEmbeddings"]
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2: normal(0, initializer_range) for both tables. `None`: torch's own
        # nn.Embedding init, normal(0, 1). `init.*` skips tensors that were loaded.
        if isinstance(module, nn.Embedding):
            std = self.config.initializer_range
            init.normal_(module.weight, mean=0.0, std=1.0 if std is None else std)


class HfEmbedModel(HfEmbedPreTrainedModel):
    """The embedding stage as a Hugging Face model: `last_hidden_state` is (B, T, D)."""

    def __init__(self, config: HfEmbedConfig):
        super().__init__(config)
        self.embeddings = HfEmbeddings(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.wte = value
        self.embeddings.vocab_size = value.num_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values_length: int = 0,
        return_dict: bool | None = None,
        **kwargs,
    ) -> HfEmbedModelOutput | tuple[torch.Tensor]:
        hidden_states = self.embeddings(
            input_ids=input_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            past_key_values_length=past_key_values_length,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if not return_dict:
            return (hidden_states,)
        return HfEmbedModelOutput(last_hidden_state=hidden_states)

    # ----------------------------------------------------------------------- GPT-2 weights

    @classmethod
    def from_gpt2(cls, gpt2, **config_overrides) -> HfEmbedModel:
        """Build from a transformers GPT-2 (`GPT2Model`, `GPT2LMHeadModel`, or a path / Hub id of one).

        Copies `wte` and `wpe`; the result equals GPT-2's embedding stage (eval mode).
        """
        if isinstance(gpt2, (str, bytes)) or hasattr(gpt2, "__fspath__"):
            from transformers import GPT2Model

            gpt2 = GPT2Model.from_pretrained(gpt2)
        transformer = _gpt2_transformer(gpt2)
        g = gpt2.config
        config = HfEmbedConfig(
            vocab_size=transformer.wte.num_embeddings,
            hidden_size=g.n_embd,
            max_position_embeddings=transformer.wpe.num_embeddings,
            embedding_dropout=float(g.embd_pdrop),
            initializer_range=g.initializer_range,
            bos_token_id=g.bos_token_id if g.bos_token_id is not None and g.bos_token_id < g.vocab_size else None,
            eos_token_id=g.eos_token_id if isinstance(g.eos_token_id, int) and g.eos_token_id < g.vocab_size else None,
            **config_overrides,
        )
        with init.no_init_weights():
            model = cls(config)
        model.load_state_dict(
            {
                "embeddings.wte.weight": transformer.wte.weight.detach(),
                "embeddings.wpe.weight": transformer.wpe.weight.detach(),
            }
        )
        return model.to(transformer.wte.weight.dtype)

    @torch.no_grad()
    def to_gpt2(self, gpt2):
        """Write `wte` and `wpe` into a transformers `GPT2Model`/`GPT2LMHeadModel` (a tied head follows)."""
        transformer = _gpt2_transformer(gpt2)
        for name in ("wte", "wpe"):
            source = getattr(self.embeddings, name)
            target = getattr(transformer, name)
            if not isinstance(source, nn.Embedding):
                raise ValueError(f"GPT-2 has a learned `{name}` table; this model's is {type(source).__name__}")
            if target.weight.shape != source.weight.shape:
                mine, theirs = tuple(source.weight.shape), tuple(target.weight.shape)
                raise ValueError(f"`{name}` shapes differ: this model {mine}, GPT-2 {theirs}")
            target.weight.copy_(source.weight)
        return gpt2


def _gpt2_transformer(gpt2) -> nn.Module:
    transformer = getattr(gpt2, "transformer", gpt2)
    if not isinstance(getattr(transformer, "wte", None), nn.Embedding) or not isinstance(
        getattr(transformer, "wpe", None), nn.Embedding
    ):
        raise TypeError(f"expected a transformers GPT-2 model with `wte` and `wpe`, got {type(gpt2).__name__}")
    return transformer


__all__ = [
    "HfEmbedModel",
    "HfEmbedModelOutput",
    "HfEmbedPreTrainedModel",
    "HfEmbeddings",
    "LearnedPositionEmbedding",
    "NoPositionEmbedding",
    "position_ids_from_attention_mask",
]
