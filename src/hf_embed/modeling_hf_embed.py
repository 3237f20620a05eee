"""The embedding stage as transformers models: `HfEmbedModel` (the stage alone) and `HfEmbedForCausalLM` (an LM
head tied to the token table), around the layer `HfEmbeddings` (`embeddings.py`).

Around transformers' own machinery they add: strict loading (`loading.py`), saves published whole
(`atomic_write.py`), the keyword policy (`validation.check_forward_keywords`), and weights in and out of other
families (`families.py`).

This file imports only torch, transformers and its flat siblings: `save_pretrained` copies them next to the
weights for `trust_remote_code` loading.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput

from .atomic_write import read_folder_consistently, write_folder_atomically
from .configuration_hf_embed import HfEmbedConfig
from .embeddings import HfEmbeddings
from .families import stage_from_transformers, stage_to_transformers
from .loading import load_whole
from .position_embeddings import (
    RotaryPositionEmbedding,
    apply_rotary_pos_emb,
    init_embedding_module,
    position_ids_from_attention_mask,
)
from .validation import (
    IGNORED_FORWARD_KEYWORDS,
    check_forward_keywords,
)

# --------------------------------------------------------------------------- the model


@dataclass
class HfEmbedModelOutput(BaseModelOutput):
    """`BaseModelOutput` whose `last_hidden_state` is the embedding stage's output (B, T, D).

    Args:
        last_hidden_state: (B, T, D).
        hidden_states: with `output_hidden_states`, `(last_hidden_state,)`.
        attentions: always None (no attention).
        position_embeddings: for `"rotary"`, `(cos, sin)` each (B or 1, T, head_dim); for `"relative"`, the
            (B or 1, T, P + T, head_dim) distance embeddings between the new tokens and all tokens; else None.
    """

    position_embeddings: tuple[torch.Tensor, torch.Tensor] | torch.Tensor | None = None


class HfEmbedPreTrainedModel(PreTrainedModel):
    """What the hf-embed models share: the config class, weight initialization, strict loading, whole saves.

    Args:
        config: an `HfEmbedConfig`.
    """

    config_class = HfEmbedConfig
    config: HfEmbedConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _input_embed_layer = "wte"
    _no_split_modules = ["HfEmbeddings"]
    supports_gradient_checkpointing = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, strict: the model is loaded whole, or it is an error.

        - A path that looks local (see `loading.local_folder`) and does not exist is a `FileNotFoundError` at
          once, with no Hub request; a folder without `config.json` says so.
        - A `config.json` of another model type is refused; a transformers GPT-2 gets the hint to convert it
          (`HfEmbedModel.from_gpt2`).
        - Missing, unexpected or renamed tensors, and tensors whose shape or dtype disagrees with
          `config.json`, are a `ValueError` naming the checkpoint and the tensors: no table is left freshly
          initialized. Opt-ins, as in transformers: `ignore_mismatched_sizes=True` re-initializes tables of
          another size; `output_loading_info=True` returns `(model, report)` instead of raising, and any
          missing table is then initialized as at construction (the report names it).
        - These checks guard checkpoints read from a folder or the Hub. `from_pretrained(None, config=...,
          state_dict=...)` takes the caller's tensors as transformers does (missing ones initialized).
        - Weights in pickle files (`pytorch_model.bin`) can run code when loaded, so they are refused unless
          `use_safetensors=False` is passed. A corrupt or truncated weights file is a `ValueError` naming it.

        A save published into the folder while it is read (config of one save, weights of the next) is
        noticed, and the folder is read again (`atomic_write.read_folder_consistently`).

        Raises:
            FileNotFoundError, NotADirectoryError, ValueError: as above.
        """
        return read_folder_consistently(
            pretrained_model_name_or_path,
            lambda: load_whole(
                super(HfEmbedPreTrainedModel, cls).from_pretrained, pretrained_model_name_or_path, *model_args, **kwargs
            ),
        )

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """`PreTrainedModel.resize_token_embeddings`, recording the real vocabulary when the table is padded.

        With `pad_to_multiple_of` (64 or 128, for faster matrix products) the table gets rows past `new_num_tokens`
        (the tokenizer's size; by default the current real vocabulary): `config.vocab_size` is the padded row count,
        as in transformers, and `config.unpadded_vocab_size` records the real one, whose padding rows
        `HfEmbedForCausalLM` never gives probability. A tied head follows the table.
        """
        real = new_num_tokens if new_num_tokens is not None else self.config.real_vocab_size
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        rows = embeddings.weight.shape[0]
        self.config.unpadded_vocab_size = real if real < rows else None
        return embeddings

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, published whole: a crash leaves the previous folder or the new one.

        The save is staged in a new folder beside `save_directory`, synced, and swapped in at once
        (`atomic_write.write_folder_atomically`); a second writer of the same folder fails with
        `OutputLockedError`. Files already in the folder that the save does not write (a tokenizer, say)
        are kept; stale weight shards of an earlier save are removed. Ranks that do not write (distributed
        saves) and `push_to_hub` take transformers' path.
        """
        self._map_both_auto_classes()
        is_main_process = kwargs.get("is_main_process", args[0] if args else True)
        if kwargs.get("push_to_hub") or not self.should_save_on_this_rank(is_main_process):
            return super().save_pretrained(save_directory, *args, **kwargs)
        write_folder_atomically(
            save_directory,
            lambda staging: super(HfEmbedPreTrainedModel, self).save_pretrained(staging, *args, **kwargs),
        )

    def _map_both_auto_classes(self) -> None:
        """Let a saved folder of either class load through `AutoModel` and `AutoModelForCausalLM`.

        transformers writes only the saving class into `auto_map`; with both, `trust_remote_code` loading
        gives the embedding stage of a causal-LM folder, or a causal LM (head tied to `wte`) from a base folder.
        """
        if not self.is_remote_code():
            return
        module = type(self).__module__.rsplit(".", 1)[-1]
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            "AutoModel": f"{module}.HfEmbedModel",
            "AutoModelForCausalLM": f"{module}.HfEmbedForCausalLM",
        }

    def gather_sharded_state_dict_for_save(self, model_to_save, state_dict, *args, **kwargs):
        """Gather tensor-parallel weights for saving, each tied tensor once.

        transformers gathers every key into a full tensor of its own, so the tied head and `wte` would no longer
        share storage and the checkpoint would hold the table twice. Aliases are gathered once and put back as
        the same tensor, which `save_pretrained` then writes once under the source's name.
        """
        first, aliases = {}, {}
        for name, parameter in model_to_save.named_parameters(remove_duplicate=False):
            if name in state_dict:
                aliases[name] = first.setdefault(id(parameter), name)
        aliases = {name: source for name, source in aliases.items() if name != source}
        unique = {name: tensor for name, tensor in state_dict.items() if name not in aliases}
        gathered = super().gather_sharded_state_dict_for_save(model_to_save, unique, *args, **kwargs)
        for name, source in aliases.items():
            if source in gathered:
                gathered[name] = gathered[source]
        return gathered

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2's normal(0, initializer_range) for every table (`None`: torch's nn.Embedding default), the fixed
        # sinusoid recomputed: the initializer `HfEmbeddings` uses alone, which skips tensors that were loaded.
        init_embedding_module(module, self.config.initializer_range)


class HfEmbedModel(HfEmbedPreTrainedModel):
    """The embedding stage as a Hugging Face model: `last_hidden_state` is (B, T, D).

    Args:
        config: the stage's settings; the tables are initialized as `config.initializer_range` says.
    """

    # as `register_for_auto_class("AutoModel")` sets it (see HfEmbedConfig._auto_class); transformers declares
    # `_auto_class = None` without a type, so the type checker takes its type to be None
    _auto_class = "AutoModel"  # type: ignore[assignment]

    def __init__(self, config: HfEmbedConfig):
        super().__init__(config)
        # `post_init` fills the tables (`_init_weights`, wte then wpe: the numbers `HfEmbeddings(config)` draws),
        # and `from_pretrained` fills only those it did not load.
        self.embeddings = HfEmbeddings(config, initialize=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.wte

    # transformers types `value` as any Module; the layer needs an nn.Embedding (its row count)
    def set_input_embeddings(self, value: nn.Embedding) -> None:  # type: ignore[override]
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
        *,
        token_type_ids: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> HfEmbedModelOutput | tuple:
        """The embedding stage: `last_hidden_state` (B, T, D), as `GPT2Model`'s `hidden_states[0]`.

        Args:
            input_ids: (B, T) token ids; or `inputs_embeds` (B, T, D) instead.
            attention_mask: (B, T) or (B, P + T) of 0 (padding) and 1 (token); left padding gets no position.
            position_ids: (B, T) or (1, T) positions; default `P .. P + T - 1`, or from `attention_mask`.
            past_key_values_length: P, tokens before these (incremental decoding).
            return_dict: a `HfEmbedModelOutput` (default `config.return_dict`) or its tuple.
            token_type_ids: (B, T) ids embedded with `wte` and added, as GPT-2 does.
            output_hidden_states: also return `hidden_states=(last_hidden_state,)`, transformers' convention for a
                model whose only hidden state is its embedding output (default `config.output_hidden_states`).
            kwargs: only what transformers' machinery passes (`check_forward_keywords`); anything else is a
                `TypeError` naming it.
        """
        if kwargs:
            check_forward_keywords(self.forward, kwargs)
        hidden_states, position_embeddings = self.embeddings(
            input_ids=input_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            past_key_values_length=past_key_values_length,
            token_type_ids=token_type_ids,
        )
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        output = HfEmbedModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=(hidden_states,) if output_hidden_states else None,
            position_embeddings=position_embeddings,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    # transformers annotates nn.Embedding; the sinusoidal, rotary, relative and none schemes are other modules
    def get_position_embeddings(self) -> nn.Module:  # type: ignore[override]
        return self.embeddings.wpe

    def resize_position_embeddings(self, new_num_position_embeddings: int, method: str = "keep") -> None:
        """Change `max_position_embeddings` (the config follows) for longer or shorter contexts.

        Args:
            new_num_position_embeddings: the new number of positions.
            method: how the learned (absolute) table changes:
                `"keep"` (default; `"extend"` is accepted for it): the first `min(old, new)` rows are kept bit for
                bit, so shrinking keeps the first rows (as transformers' models and nanoGPT's `crop_block_size`
                do), and growing appends rows initialized as at construction;
                `"interpolate"`: the table is resampled linearly over the new length (first and last rows kept:
                `torch.nn.functional.interpolate(mode="linear", align_corners=True)` along positions, in float32);
                learned tables only (other schemes have no table to resample: a `ValueError`).
                The sinusoidal table is recomputed at the new length; rotary, relative and none take the new limit
                (a dynamic-NTK rotary scheme keeps its original length, recorded as
                `rope_parameters["original_max_position_embeddings"]`, and scales past it).

        Raises:
            ValueError: for a length that is not a positive integer, an unknown `method`, or `"interpolate"` for a
                scheme without a learned table.
            TypeError: when the learned or sinusoidal `wpe` is wrapped (a PEFT adapter): merge or remove it first.
        """
        self.embeddings.resize_position_embeddings(new_num_position_embeddings, method=method)
        self.config.max_position_embeddings = new_num_position_embeddings
        wpe = self.embeddings.wpe
        if isinstance(wpe, RotaryPositionEmbedding) and wpe.rope_parameters != self.config.rope_parameters:
            self.config.rope_parameters = dict(wpe.rope_parameters)  # dynamic NTK: the original length recorded

    # ----------------------------------------------------------------------- transformers weights

    @classmethod
    def from_transformers(cls, model_or_path, **config_overrides) -> HfEmbedModel:
        """Build the hf-embed model of a transformers model's embedding stage, with its tables.

        Families (`families.FAMILIES`): GPT-2, Llama, Mistral, Qwen2, Gemma, BLOOM; the base model or any model
        around it (`LlamaForCausalLM`, `GPT2LMHeadModel`, ...). The result's `last_hidden_state` equals their
        `hidden_states[0]` (`output_hidden_states=True`, eval mode) and, for the rotary families, its
        `position_embeddings` equal their rotary `(cos, sin)`; the tables keep their dtype.

        Args:
            model_or_path: a transformers model, or the folder / Hub id of a saved one (loaded with `AutoModel`,
                the whole base model: the tables are then copied out of it).
            config_overrides: `HfEmbedConfig` fields to set instead of the family's (`max_position_embeddings=`
                for BLOOM, which has no length of its own).

        Raises:
            ValueError: an architecture outside the families, naming the supported ones.
            TypeError: something that is not a transformers model or a path.
        """
        return stage_from_transformers(cls, model_or_path, **config_overrides)

    @torch.no_grad()
    def to_transformers(self, model):
        """Write this model's tables into a transformers model of a supported family; a tied LM head follows.

        The two embedding stages must be the same computation (`families.STAGE_FIELDS`: scheme, RoPE settings,
        multiplier, norm) and the tables the same shapes; then `model`'s `hidden_states[0]` equals this model's
        `last_hidden_state`. Returns `model`.

        Raises:
            ValueError: the stages differ (each difference named) or a table's shape differs.
            TypeError: `model` is not a transformers model.
        """
        return stage_to_transformers(self, model)

    @classmethod
    def from_gpt2(cls, gpt2, **config_overrides) -> HfEmbedModel:
        """`from_transformers` for a transformers GPT-2 (`GPT2Model`, `GPT2LMHeadModel`, or a path / Hub id)."""
        return cls.from_transformers(gpt2, **config_overrides)

    def to_gpt2(self, gpt2):
        """`to_transformers` for a transformers GPT-2 (`GPT2Model`, `GPT2LMHeadModel`); a tied head follows."""
        if getattr(getattr(gpt2, "config", None), "model_type", None) != "gpt2":
            raise TypeError(f"expected a transformers GPT-2 model with `wte` and `wpe`, got {type(gpt2).__name__}")
        return self.to_transformers(gpt2)


class HfEmbedForCausalLM(HfEmbedPreTrainedModel, GenerationMixin):
    """The embedding stage with a language-model head tied to `wte`: logits = hidden @ wte.T.

    With absolute positions this is a bigram-with-positions model: each token's next-token logits come
    from its own embedding plus its position's. Small enough to train the tables alone with `Trainer`.

    `generate()` works (greedy, sampling, beams; `pipeline("text-generation")`). There is no attention
    and so no cache: every step embeds the whole sequence, with positions from `attention_mask` (left
    padding) or the extended `position_ids`, exactly as a hand-written loop calling the model would.

    A padded vocabulary (`resize_token_embeddings(pad_to_multiple_of=64)`, `config.unpadded_vocab_size`) gets the
    logits of its padding rows set to the dtype's minimum, so softmax gives them probability 0 and `generate()`
    never emits an id the tokenizer cannot decode.

    Args:
        config: the stage's settings; the head has no weights of its own (it is `wte`).
    """

    # as `register_for_auto_class("AutoModelForCausalLM")` sets it (transformers' `_auto_class = None` is untyped)
    _auto_class = "AutoModelForCausalLM"  # type: ignore[assignment]
    _tied_weights_keys = {"lm_head.weight": "model.embeddings.wte.weight"}
    # Tensor parallel, as transformers' tied-head models (LFM2, GPT-NeoX) plan it: `wte` is split over the
    # vocabulary (`embedding_rowwise`, rows of the (V, D) table), and the head, which IS that table, is split
    # the same way (`colwise`: output features = vocabulary rows), its logits gathered on every rank.
    _tp_plan = {"lm_head": "colwise_gather_output"}
    # lists, as transformers' own models write it; its annotation says tuple[str, str]
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}  # type: ignore[dict-item]

    def __init__(self, config: HfEmbedConfig):
        super().__init__(config)
        self.model = HfEmbedModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embeddings.wte

    # as HfEmbedModel's: the layer needs an nn.Embedding, where transformers types `value` as any Module
    def set_input_embeddings(self, value: nn.Embedding) -> None:  # type: ignore[override]
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    # as HfEmbedModel's: transformers annotates nn.Embedding; the other schemes are other modules
    def get_position_embeddings(self) -> nn.Module:  # type: ignore[override]
        return self.model.get_position_embeddings()

    def resize_position_embeddings(self, new_num_position_embeddings: int, method: str = "keep") -> None:
        """`HfEmbedModel.resize_position_embeddings` on the embedding stage (same `method`s); the config follows."""
        self.model.resize_position_embeddings(new_num_position_embeddings, method=method)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        past_key_values_length: int = 0,
        return_dict: bool | None = None,
        *,
        token_type_ids: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        shift_labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> CausalLMOutput | tuple:
        """Next-token logits (B, T, V) for `input_ids` (B, T) or `inputs_embeds` (B, T, D).

        Args:
            input_ids, attention_mask, position_ids, inputs_embeds, past_key_values_length, token_type_ids,
                output_hidden_states: as `HfEmbedModel.forward`; `hidden_states` is `(embedding output,)`.
            labels: (B, T), the inputs themselves (shifted inside, as GPT-2 does); -100 is ignored.
            shift_labels: (B, T) labels already shifted (packed sequences); used instead of shifting `labels`.
            return_dict: a `CausalLMOutput`, or its non-`None` fields as a tuple; defaults to `config.return_dict`.
            logits_to_keep: an int keeps the logits of the last that many positions (0: all); a 1-D tensor
                keeps those positions. `generate()` passes 1.
            kwargs: only what transformers' machinery passes (`check_forward_keywords`); Trainer's
                `num_items_in_batch` goes to the loss.

        Returns:
            `CausalLMOutput(loss, logits, hidden_states)` or the tuple `(loss?, logits, hidden_states?)`.
        """
        check_forward_keywords(self.forward, kwargs)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            past_key_values_length=past_key_values_length,
            token_type_ids=token_type_ids,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state  # (B, T, D)
        if isinstance(logits_to_keep, int):
            hidden_states = hidden_states[:, -logits_to_keep:] if logits_to_keep else hidden_states  # (B, K, D)
        else:
            hidden_states = hidden_states[:, logits_to_keep]
        logits = self.lm_head(hidden_states)  # (B, K, V)
        real = self.config.unpadded_vocab_size
        if real is not None and real < logits.shape[-1]:  # padding rows: no id of the tokenizer, no probability
            logits[..., real:] = torch.finfo(logits.dtype).min
        loss = None
        if labels is not None or shift_labels is not None:
            loss = self.loss_function(
                logits,
                labels,
                vocab_size=self.config.vocab_size,
                num_items_in_batch=kwargs.get("num_items_in_batch"),
                shift_labels=shift_labels,
            )
        output = CausalLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, inputs_embeds=None, **kwargs):
        """Every generation step embeds the whole sequence: there is no cache to hold the past.

        A prompt given as `inputs_embeds` stays in front of the embeddings of the tokens generated so far
        (`input_ids` then holds only those), so each step still sees the whole sequence.
        """
        kwargs.pop("cache", None)
        kwargs.pop("is_first_iteration", None)
        if inputs_embeds is not None:
            if input_ids.shape[1]:
                inputs_embeds = torch.cat((inputs_embeds, self.get_input_embeddings()(input_ids)), dim=1)
            return super().prepare_inputs_for_generation(
                input_ids, inputs_embeds=inputs_embeds, is_first_iteration=True, **kwargs
            )
        return super().prepare_inputs_for_generation(input_ids, **kwargs)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # no attention, nothing to cache


__all__ = [
    "IGNORED_FORWARD_KEYWORDS",
    "HfEmbedForCausalLM",
    "HfEmbedModel",
    "HfEmbedModelOutput",
    "HfEmbedPreTrainedModel",
    "HfEmbeddings",
    "apply_rotary_pos_emb",
    "check_forward_keywords",
    "position_ids_from_attention_mask",
]
