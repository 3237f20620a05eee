"""Train a tiny transformers GPT-2 whose embedding stage is hf-embed's, then save the tables back as hf-embed.

1. hf-embed's tokenizer and sliding-window dataloader cut a text into (inputs, targets) windows.
2. An `HfEmbedModel` gives its `wte`/`wpe` to a small `GPT2LMHeadModel` (`to_gpt2`; the tied LM head follows).
3. transformers' `Trainer` trains the GPT-2 for a few hundred steps; the loss falls.
4. The trained tables come back as an `HfEmbedModel` (`from_gpt2`), saved and reloaded with `AutoModel`.

    python scripts/train_tiny_gpt.py [--text-file FILE] [--steps 300] [--output tiny-gpt-embeddings]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel, GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from hf_embed import HfEmbedConfig, HfEmbedModel, create_dataloader, gpt2_tokenizer
from hf_embed.sample_text import SAMPLE_TEXT


class Windows(torch.utils.data.Dataset):
    """hf-embed's windows as the dicts `Trainer` feeds a causal LM (GPT-2 shifts the labels itself)."""

    def __init__(self, windows):
        self.windows = windows

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, index):
        inputs, _ = self.windows[index]
        return {"input_ids": inputs, "labels": inputs}


def train(text: str, steps: int, max_length: int = 32, hidden_size: int = 64, batch_size: int = 8, seed: int = 0):
    """Returns (per-log losses, the trained GPT-2, the hf-embed model its tables came from)."""
    torch.manual_seed(seed)
    tokenizer = gpt2_tokenizer()
    loader = create_dataloader(text, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length, stride=1)
    config = HfEmbedConfig.from_preset("gpt2", hidden_size=hidden_size, max_position_embeddings=max_length)
    embeddings = HfEmbedModel(config)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(n_embd=hidden_size, n_layer=2, n_head=4, n_positions=max_length, vocab_size=config.vocab_size)
    )
    embeddings.to_gpt2(gpt2)  # GPT-2's embedding stage is now hf-embed's tables

    with tempfile.TemporaryDirectory() as run_dir:
        args = TrainingArguments(
            output_dir=run_dir,
            per_device_train_batch_size=batch_size,
            max_steps=steps,
            learning_rate=3e-3,
            warmup_steps=min(20, steps // 10),
            logging_steps=max(1, steps // 10),
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            seed=seed,
        )
        trainer = Trainer(model=gpt2, args=args, train_dataset=Windows(loader.dataset))
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses, gpt2, embeddings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-file", type=Path, help="UTF-8 text to train on (default: hf-embed's sample text)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--output", type=Path, default=Path("tiny-gpt-embeddings"))
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    text = SAMPLE_TEXT if args.text_file is None else args.text_file.read_text(encoding="utf-8")
    losses, gpt2, _ = train(text, args.steps)
    print("loss every", max(1, args.steps // 10), "steps:", " ".join(f"{x:.2f}" for x in losses))

    trained = HfEmbedModel.from_gpt2(gpt2)  # the trained tables, as an hf-embed model
    trained.save_pretrained(args.output)
    reloaded = AutoModel.from_pretrained(args.output)
    same = torch.equal(reloaded.embeddings.wte.weight, gpt2.transformer.wte.weight)
    print(f"trained embeddings saved to {args.output}/ and reloaded with AutoModel: identical = {same}")
    return 0 if same and losses[-1] < losses[0] else 1


if __name__ == "__main__":
    raise SystemExit(main())
