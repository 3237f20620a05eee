"""`hf-embed demo`: the book's chapter-2 walk-through, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..sample_text import SAMPLE_TEXT
from .common import check_files, check_output_folder, read_text, save_folder


def add_demo(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the book's chapter-2 walk-through end to end (offline)",
        description=(
            "Tokenize a text with GPT-2's BPE, cut it into sliding windows (batch 8, max_length 4, stride 4), "
            "embed the first batch with the book-ch2 preset (50257 x 256, context 4), save model and tokenizer, "
            "reload them with AutoModel/AutoTokenizer and check the reload is identical."
        ),
    )
    p.add_argument("--text-file", type=Path, help="a UTF-8 text file to use instead of the embedded sample text")
    p.add_argument(
        "--output", type=Path, default=Path("hf-embed-demo"), help="folder to save into (default: %(default)s)"
    )
    p.add_argument(
        "--seed", type=int, default=123, help="torch seed for the model's initial tables (default: %(default)s)"
    )
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    check_output_folder(args.output)
    if args.text_file is not None:
        check_files([args.text_file])
    text = SAMPLE_TEXT if args.text_file is None else read_text(args.text_file)

    import torch
    from transformers import AutoModel, AutoTokenizer

    from .. import HfEmbedConfig, HfEmbedModel, create_dataloader, gpt2_tokenizer
    from ..tokenization import check_vocab_compatible

    tokenizer = gpt2_tokenizer()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    print(f"text: {len(text)} characters -> {len(ids)} GPT-2 token ids")

    loader = create_dataloader(
        text, tokenizer=tokenizer, batch_size=8, max_length=4, stride=4, shuffle=False, drop_last=False
    )
    inputs, _targets = next(iter(loader))
    print(
        f"dataloader: {len(loader.dataset)} windows, {len(loader)} batches; first batch inputs {tuple(inputs.shape)}:"
    )
    print(inputs)

    torch.manual_seed(args.seed)
    model = HfEmbedModel(HfEmbedConfig.from_preset("book-ch2")).eval()
    check_vocab_compatible(model.config, tokenizer)
    with torch.no_grad():
        token_embeddings = model.embeddings.wte(inputs)
        embeddings = model(inputs).last_hidden_state
    print(f"token embeddings: {tuple(inputs.shape)} -> {tuple(token_embeddings.shape)}")
    print(f"token + position embeddings: {tuple(inputs.shape)} -> {tuple(embeddings.shape)}")

    save_folder(args.output, model, tokenizer)
    reloaded = AutoModel.from_pretrained(args.output).eval()
    reloaded_tokenizer = AutoTokenizer.from_pretrained(args.output)
    with torch.no_grad():
        same_output = torch.equal(reloaded(inputs).last_hidden_state, embeddings)
    same_ids = reloaded_tokenizer(text, add_special_tokens=False)["input_ids"] == ids
    if not (same_output and same_ids):
        raise RuntimeError(
            f"reload from {args.output} differs (embeddings equal: {same_output}, ids equal: {same_ids})"
        )
    print(f"saved to {args.output}/ and reloaded with AutoModel/AutoTokenizer: identical embeddings and token ids")
    return 0
