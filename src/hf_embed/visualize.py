"""What a position scheme encodes, as a picture: position-to-position cosine similarity.

The PNG is written with the standard library (zlib + struct), so plotting adds no dependency.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F

from .atomic_write import write_file_atomically
from .modeling_hf_embed import HfEmbedModel
from .position_embeddings import (
    LearnedPositionEmbedding,
    RelativePositionEmbedding,
    RotaryPositionEmbedding,
    SinusoidalPositionEmbedding,
)

DEFAULT_PLOT_POSITIONS = 1024  # without `num_positions`: max_position_embeddings up to this (Llama 3.1: 131072)
MAX_PLOT_POSITIONS = 8192  # an (N, N) float32 similarity matrix of 256 MiB


@torch.no_grad()
def position_vectors(model: HfEmbedModel, num_positions: int | None = None) -> torch.Tensor:
    """(N, d) one vector per position (per clipped distance -k..k for the relative scheme), float32.

    absolute / sinusoidal: the table's rows; rotary: `[cos, sin]` at each position, as the scheme computes them
    (scaled by its `rope_parameters`; their dot product depends only on the distance between positions); relative:
    the 2k + 1 distance embeddings. `num_positions` defaults to max_position_embeddings, at most 1024.
    """
    wpe = model.embeddings.wpe
    n = num_positions or min(model.config.max_position_embeddings, DEFAULT_PLOT_POSITIONS)
    if n > model.config.max_position_embeddings:
        raise ValueError(f"{n} positions exceed max_position_embeddings ({model.config.max_position_embeddings})")
    if n > MAX_PLOT_POSITIONS:
        raise ValueError(f"{n} positions would make a {n} x {n} picture; at most {MAX_PLOT_POSITIONS}")
    if isinstance(wpe, LearnedPositionEmbedding):
        return wpe.weight[:n].float()
    if isinstance(wpe, SinusoidalPositionEmbedding):
        return wpe.table[:n].float()
    if isinstance(wpe, RotaryPositionEmbedding):
        cos, sin = wpe(torch.arange(n).unsqueeze(0))  # (1, N, d) each, float32
        return torch.cat((cos[0], sin[0]), dim=-1)
    if isinstance(wpe, RelativePositionEmbedding):
        return wpe.weight.float()
    raise ValueError(f"position_embedding_type={model.config.position_embedding_type!r} encodes no positions")


def cosine_similarity_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """(N, d) -> (N, N) cosine similarities."""
    unit = F.normalize(vectors.float(), dim=-1)
    return unit @ unit.T


def _diverging_rgb(values: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8 RGB: blue (-1), white (0), red (+1). (H, W) -> (H, W, 3)."""
    v = values.clamp(-1, 1).unsqueeze(-1)  # (H, W, 1)
    white = torch.ones(3)
    red, blue = torch.tensor([0.70, 0.09, 0.17]), torch.tensor([0.13, 0.40, 0.67])
    rgb = torch.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return (rgb * 255).round().to(torch.uint8)


def write_png(rgb: torch.Tensor, path: str | Path) -> None:
    """Write an (H, W, 3) uint8 tensor as an 8-bit RGB PNG."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].contiguous().numpy().tobytes() for row in range(height))  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    write_file_atomically(path, lambda temporary: Path(temporary).write_bytes(png))  # never half a picture


def plot_position_similarity(
    model: HfEmbedModel, path: str | Path, num_positions: int | None = None, size: int = 512
) -> torch.Tensor:
    """Write a heatmap PNG of position-to-position cosine similarity; returns the (N, N) matrix."""
    similarity = cosine_similarity_matrix(position_vectors(model, num_positions))
    n = similarity.shape[0]
    scale = max(1, size // n)
    image = _diverging_rgb(similarity).repeat_interleave(scale, 0).repeat_interleave(scale, 1)  # (nS, nS, 3)
    write_png(image, path)
    return similarity


__all__ = ["cosine_similarity_matrix", "plot_position_similarity", "position_vectors", "write_png"]
