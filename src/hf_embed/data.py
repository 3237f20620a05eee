"""Sliding-window training data: the book's `GPTDatasetV1` / `create_dataloader_v1`, without copies.

Reference (Raschka, *Build a Large Language Model (From Scratch)*, chapter 2): window `i` starts
at `i * stride` for `i in range(0, len(ids) - max_length, stride)`; its input is
`ids[s : s + max_length]` and its target `ids[s + 1 : s + max_length + 1]`. Here a window is a
view into the one id tensor, so memory stays that of the ids whatever the overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from .tokenization import encode, vocab_size_of


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return value


def _as_id_tensor(token_ids) -> torch.Tensor:
    ids = token_ids if isinstance(token_ids, torch.Tensor) else torch.as_tensor(token_ids)
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"token ids must be integers, got {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"token ids must be one flat sequence (rank 1), got shape {tuple(ids.shape)}")
    return ids.long()


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Raise `ValueError` naming the first id outside [0, vocab_size) and its position."""
    if ids.numel() == 0:
        return
    lo, hi = torch.aminmax(ids)
    if lo.item() < 0 or hi.item() >= vocab_size:
        where = int(((ids < 0) | (ids >= vocab_size)).nonzero()[0])
        raise ValueError(
            f"token id {int(ids[where])} at position {where} is outside the vocabulary (size {vocab_size})"
        )


def num_windows(num_tokens: int, max_length: int, stride: int) -> int:
    """len(range(0, num_tokens - max_length, stride)): the reference's window count."""
    return max(0, -(-(num_tokens - max_length) // stride))


class SlidingWindowDataset(Dataset):
    """`(inputs, targets)` windows over one flat id sequence; targets are inputs shifted by one.

    Equal, window for window, to the book's `GPTDatasetV1(txt, tokenizer, max_length, stride)`
    on the same ids. Each item is a pair of int64 views of shape (max_length,).
    """

    def __init__(
        self,
        token_ids: torch.Tensor | Sequence[int],
        max_length: int = 256,
        stride: int = 128,
        vocab_size: int | None = None,
    ):
        self.max_length = _positive_int("max_length", max_length)
        self.stride = _positive_int("stride", stride)
        self.token_ids = _as_id_tensor(token_ids)
        if vocab_size is not None:
            check_token_ids(self.token_ids, vocab_size)
        n = self.token_ids.numel()
        if n <= self.max_length:
            raise ValueError(
                f"{n} tokens are too few for one window of max_length={self.max_length} "
                f"(a window needs max_length + 1 = {self.max_length + 1} tokens: inputs plus the shifted target)"
            )
        self._len = num_windows(n, self.max_length, self.stride)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self._len <= index < self._len:
            raise IndexError(f"window {index} out of range for {self._len} windows")
        start = (index % self._len) * self.stride
        window = self.token_ids[start : start + self.max_length + 1]  # (max_length + 1,) view
        return window[:-1], window[1:]


def create_dataloader(
    text_or_ids: str | torch.Tensor | Sequence[int],
    tokenizer=None,
    batch_size: int = 4,
    max_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    vocab_size: int | None = None,
) -> DataLoader:
    """The book's `create_dataloader_v1`, same defaults, same batches for the same seed.

    `text_or_ids`: a text (then `tokenizer` is required, e.g. `hf_embed.gpt2_tokenizer()`) or token ids.
    With `shuffle=True` and neither `generator` nor `seed`, the order is drawn from torch's global
    RNG exactly as `DataLoader(shuffle=True)` draws it, so `torch.manual_seed(s)` before iterating
    reproduces the reference. `seed` makes the order independent of the global RNG.
    """
    batch_size = _positive_int("batch_size", batch_size)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"`num_workers` must be an integer >= 0, got {num_workers!r}")
    if isinstance(text_or_ids, str):
        if tokenizer is None:
            raise TypeError("a text needs a `tokenizer` (for GPT-2's: `tokenizer=hf_embed.gpt2_tokenizer()`)")
        token_ids = encode(tokenizer, text_or_ids)
        vocab_size = vocab_size if vocab_size is not None else vocab_size_of(tokenizer)
    else:
        token_ids = text_or_ids
    if seed is not None:
        if generator is not None:
            raise ValueError("pass either `generator` or `seed`, not both")
        generator = torch.Generator().manual_seed(seed)

    dataset = SlidingWindowDataset(token_ids, max_length=max_length, stride=stride, vocab_size=vocab_size)
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"{len(dataset)} windows are fewer than batch_size={batch_size} with drop_last=True: "
            "the loader would yield no batch (use more text, a smaller batch_size, or drop_last=False)"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )


__all__ = ["SlidingWindowDataset", "check_token_ids", "create_dataloader", "num_windows"]
