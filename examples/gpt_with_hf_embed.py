"""hf-embed's embedding stage inside a hand-written GPT, the kind people copy (nanoGPT, the book's `GPTModel`).

`GPT` below is a small decoder-only transformer written out in full: token table `wte`, position table `wpe`,
dropout, pre-norm blocks (causal self-attention, MLP), final norm, and a head tied to `wte`. `HfEmbedGPT` is
the same model with its first three lines replaced by one `HfEmbeddings` layer, which is all a user changes
to put hf-embed into such a model. With the same weights (`HfEmbedGPT.from_gpt`) the two give identical
logits, bit for bit (`torch.equal`), in eval mode and, with the same seed, with dropout in train mode.

    python examples/gpt_with_hf_embed.py

Legend for shapes: B batch, T sequence length, D hidden size, H heads, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from hf_embed import HfEmbedConfig, HfEmbeddings


@dataclass
class GPTConfig:
    vocab_size: int = 99
    context_length: int = 16
    hidden_size: int = 32
    num_heads: int = 4
    num_layers: int = 2
    dropout: float = 0.1


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=-1)  # 3 x (B, T, D)
        q, k, v = (t.view(batch, length, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D/H)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)  # (B, H, T, D/H)
        return self.out(y.transpose(1, 2).reshape(batch, length, width))  # (B, T, D)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden_size)
        self.attn = CausalSelfAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.hidden_size, 4 * cfg.hidden_size),
            nn.GELU(),
            nn.Linear(4 * cfg.hidden_size, cfg.hidden_size),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """The hand-written original: its own `wte` and `wpe` tables."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.wpe = nn.Embedding(cfg.context_length, cfg.hidden_size)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.hidden_size)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2
        for name, parameter in self.named_parameters():  # GPT-2's init: normal(0, 0.02), residual outputs scaled
            if parameter.dim() == 2:
                std = 0.02 / math.sqrt(2 * cfg.num_layers) if name.endswith(("out.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(parameter, mean=0.0, std=std)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        return self.drop(self.wte(idx) + self.wpe(positions))  # (B, T, D)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx)  # (B, T, D)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))  # (B, T, V)


class HfEmbedGPT(GPT):
    """The same GPT, its embedding stage (`wte`, `wpe`, dropout) being hf-embed's `HfEmbeddings`."""

    def __init__(self, cfg: GPTConfig):
        super().__init__(cfg)
        del self.wte, self.wpe, self.drop
        self.embeddings = HfEmbeddings(
            HfEmbedConfig(
                vocab_size=cfg.vocab_size,
                hidden_size=cfg.hidden_size,
                max_position_embeddings=cfg.context_length,
                embedding_dropout=cfg.dropout,
            )
        )
        self.lm_head.weight = self.embeddings.wte.weight  # tied to hf-embed's table

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        hidden_states, _ = self.embeddings(idx)  # (B, T, D); the second output is for rotary/relative schemes
        return hidden_states

    @classmethod
    def from_gpt(cls, gpt: GPT) -> HfEmbedGPT:
        """The same weights: `wte`/`wpe` move key by key into `embeddings.wte`/`embeddings.wpe`."""
        model = cls(gpt.cfg)
        state = {("embeddings." + k if k.startswith(("wte.", "wpe.")) else k): v for k, v in gpt.state_dict().items()}
        model.load_state_dict(state)
        return model


def main() -> dict[str, bool]:
    torch.manual_seed(0)
    cfg = GPTConfig()
    gpt = GPT(cfg)
    ours = HfEmbedGPT.from_gpt(gpt)
    idx = torch.randint(0, cfg.vocab_size, (4, cfg.context_length))
    with torch.no_grad():
        results = {"eval": torch.equal(gpt.eval()(idx), ours.eval()(idx))}
        gpt.train(), ours.train()
        torch.manual_seed(1)
        original = gpt(idx)
        torch.manual_seed(1)
        results["train, same seed (dropout)"] = torch.equal(original, ours(idx))
    for what, equal in results.items():
        print(f"logits identical ({what}): {equal}")
    return results


if __name__ == "__main__":
    assert all(main().values())
