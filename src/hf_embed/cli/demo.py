"""`hf-embed demo`: the book's chapter-2 walk-through, step by step, offline.

Each step prints what the book shows (the seeded 6 x 3 table, token 3's row, the windows, the shapes) and
one line on why, computed by the library's own components: the same numbers torch gives the book's code.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sized
from pathlib import Path
from typing import cast

from ..sample_text import SAMPLE_TEXT
from .common import check_empty_output, check_files, check_output_folder, read_text, save_folder


def add_demo(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the book's chapter-2 walk-through end to end, step by step (offline)",
        description=(
            "Walk through the embedding stage of a GPT-style model as chapter 2 of 'Build a Large Language Model "
            "(From Scratch)' does, printing each step: text -> GPT-2 token ids; sliding windows (max_length 4, "
            "stride 4) and their shifted targets; the seeded 6 x 3 embedding table and the lookup of token 3; the "
            "lookup as one-hot x table; a batch (8, 4) -> (8, 4, 256) with the book-ch2 preset (50257 x 256, "
            "context 4); position rows broadcast and added; why 50257 rows become 50304; then save, reload with "
            "AutoModel/AutoTokenizer and check the reload is identical."
        ),
    )
    p.add_argument("--text-file", type=Path, help="a UTF-8 text file to use instead of the embedded sample text")
    p.add_argument(
        "--output", type=Path, default=Path("hf-embed-demo"), help="folder to save into (default: %(default)s)"
    )
    p.add_argument(
        "--force", action="store_true", help="replace the model and tokenizer of a folder that is not a previous demo's"
    )
    p.add_argument("--seed", type=int, default=123, help="torch seed, as in the book (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="print only the short summary (ids, shapes, the reload)")
    p.set_defaults(func=_demo)


class _Verbatim(str):
    """A line printed as it is (a table of tokens), never wrapped."""


def _wrapped(line: str) -> str:
    """A long explanation wrapped at 100 columns, continuation lines indented under the step's text."""
    if isinstance(line, _Verbatim):
        return line
    indent = " " * (len(line) - len(line.lstrip(" ")) or 3)
    return textwrap.fill(line, width=100, subsequent_indent=indent, break_on_hyphens=False)


def _row(values) -> str:
    """The first values of a vector, as the worked sums show them."""
    return "[" + ", ".join(f"{v:+.4f}" for v in values.tolist()) + ", ...]"


def _short(values) -> str:
    """A short vector with one decimal, as the tutorial writes its worked sum."""
    return "[" + ", ".join(f"{v:.1f}" for v in values.tolist()) + "]"


# A demo's folder: what it saves, and a note saying it is a demo's. A folder holding nothing else is replaced
# without --force; a model of the same sizes made by `init` or trained by the user has no note, and is not.
DEMO_NOTE = "HF_EMBED_DEMO.txt"
DEMO_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", DEMO_NOTE}


def _check_demo_output(folder: Path, force: bool) -> None:
    """A new or empty folder, a previous demo's (its note, its files and the model code, nothing else), or
    `--force`."""
    check_output_folder(folder)
    if force or not folder.is_dir():
        return
    names = {p.name for p in folder.iterdir()}
    code = {p.name for p in Path(__file__).resolve().parents[1].glob("*.py")}  # the model files a save copies
    if DEMO_NOTE in names and names <= DEMO_FILES | code:
        return
    check_empty_output(folder, force, replaces="its model and tokenizer with the demo's")


def _write_demo_note(folder: Path) -> None:
    from ..atomic_write import write_file_atomically

    def write(path: str) -> None:
        Path(path).write_text(
            "Written by `hf-embed demo`, which replaces this folder each time it runs with the same --output.\n",
            encoding="utf-8",
        )

    write_file_atomically(folder / DEMO_NOTE, write)


def _demo(args: argparse.Namespace) -> int:
    _check_demo_output(args.output, args.force)
    if args.text_file is not None:
        check_files([args.text_file], "--text-file")
    text = SAMPLE_TEXT if args.text_file is None else read_text(args.text_file)

    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    from .. import HfEmbedConfig, HfEmbedModel, create_dataloader, gpt2_tokenizer
    from ..tokenization import check_vocab_compatible, encode

    def say(*lines) -> None:  # the teaching lines, left out by --quiet; tensors print as torch prints them
        if not args.quiet:
            print(*(_wrapped(line) if isinstance(line, str) else line for line in lines), sep="\n")

    source = "the embedded sample text" if args.text_file is None else str(args.text_file)
    say(
        "hf-embed demo: the embedding stage of a GPT-style model, step by step (chapter 2 of 'Build a Large "
        "Language Model (From Scratch)'), offline.",
        "",
    )

    # 1. text -> ids
    model_max_length = HfEmbedConfig.from_preset("book-ch2").max_position_embeddings
    tokenizer = gpt2_tokenizer(model_max_length=model_max_length)  # saved with the model's real limit
    ids = encode(tokenizer, text)  # the whole text at once: no "longer than the maximum" warning
    say("1. Text -> token ids: GPT-2's byte-level BPE maps text to integers, one per frequent piece of text.")
    print(f"text: {len(text)} characters -> {len(ids)} GPT-2 token ids")
    pairs = [f"{i:>6} {tokenizer.decode([i])!r:<14}" for i in ids[:8]]
    say(
        f"   {source}, its first ids, each decoded:",
        *(_Verbatim("   " + "".join(pairs[k : k + 4]).rstrip()) for k in range(0, len(pairs), 4)),
        f"   The vocabulary has {len(tokenizer)} tokens; <|endoftext|> ({tokenizer.eos_token_id}) separates "
        "documents. A whole book gives far more ids than the model's context (tokenizer(book) warns \"Token "
        'indices sequence length is longer than the specified maximum sequence length": harmless here, since '
        "the windows below cut the ids to the context).",
        "",
    )

    # 2. windows
    max_length = stride = 4
    say(
        f"2. Sliding windows: max_length={max_length} ids per window, the next one starting stride={stride} ids "
        "later (stride = max_length: each id is an input once; smaller strides overlap). The target is the "
        "window shifted by one id: at each position, the next token to predict."
    )
    for w, start in enumerate(range(0, 3 * stride, stride)):
        window, target = ids[start : start + max_length], ids[start + 1 : start + max_length + 1]
        say(
            _Verbatim(f"   window {w}: ids[{start}:{start + max_length}] = {window}  {tokenizer.decode(window)!r}"),
            _Verbatim(
                f"   target {w}: ids[{start + 1}:{start + max_length + 1}] = {target}  {tokenizer.decode(target)!r}"
            ),
        )
    loader = create_dataloader(
        text, tokenizer=tokenizer, batch_size=8, max_length=max_length, stride=stride, shuffle=False, drop_last=False
    )
    inputs, targets = next(iter(loader))
    print(
        f"dataloader: {len(cast(Sized, loader.dataset))} windows, {len(loader)} batches (drop_last=False: the last, "
        f"smaller batch is kept; create_dataloader drops it by default); first batch inputs {tuple(inputs.shape)}:"
    )
    print(inputs)
    say(f"   and its targets {tuple(targets.shape)} (each row is its input row shifted left by one id):", targets, "")

    # 3. the book's seeded 6 x 3 table and the lookup of token 3
    torch.manual_seed(args.seed)
    small = torch.nn.Embedding(6, 3)
    say(
        "3. An embedding layer is a table with one trainable row per token id, random until trained. The book's "
        f"small one, torch.manual_seed({args.seed}); torch.nn.Embedding(6, 3).weight:",
        small.weight,
        "   Looking up token id 3 returns row 3 of the table: embedding(torch.tensor([3])) =",
        small(torch.tensor([3])),
        "",
    )

    # 4. one-hot x table
    one_hot = F.one_hot(torch.tensor([3]), num_classes=6).float()  # (1, 6)
    with torch.no_grad():
        product = one_hot @ small.weight  # (1, 3)
        same = torch.equal(product, small(torch.tensor([3])))
    say(
        "4. The lookup is a one-hot vector times the table, without doing the multiplication:",
        f"   one_hot(3, 6) = {one_hot[0].int().tolist()}",
        "   one_hot(3, 6) @ weight =",
        product,
        f"   equal to row 3: {same}",
        "",
    )

    # 5. the batch through the book's token table
    torch.manual_seed(args.seed)
    model = HfEmbedModel(HfEmbedConfig.from_preset("book-ch2")).eval()  # torch's own init: the book's tables
    check_vocab_compatible(model.config, tokenizer)
    with torch.no_grad():
        token_embeddings = model.embeddings.wte(inputs)  # (8, 4, 256)
        position_embeddings = model.embeddings.wpe(torch.arange(max_length))  # (4, 256)
        embeddings = model(inputs).last_hidden_state  # (8, 4, 256)
    v, d = model.config.vocab_size, model.config.hidden_size
    first = int(inputs[0, 0])
    say(
        f"5. The batch through the book's token table: {v} rows (GPT-2's ids) of {d} values, "
        f"torch.manual_seed({args.seed}); torch.nn.Embedding({v}, {d}). Each id becomes its row:"
    )
    print(f"token embeddings: {tuple(inputs.shape)} -> {tuple(token_embeddings.shape)}")
    say(
        _Verbatim(
            f"   inputs[0, 0] = {first} {tokenizer.decode([first])!r} -> {_row(token_embeddings[0, 0, :3])} "
            f"(the first 3 of {d} values)"
        ),
        "",
    )

    # 6. positions, broadcast and added
    say(
        "6. Positions: a token's row is the same wherever it stands, so a learned row per position is added "
        f"(GPT-2's absolute positions). wpe(torch.arange({max_length})) is {tuple(position_embeddings.shape)}; "
        f"added to {tuple(token_embeddings.shape)} it broadcasts: the same {max_length} position rows are added "
        f"to each of the {inputs.shape[0]} windows.",
    )
    token_row, position_row = torch.tensor([0.5, -0.2, 0.1]), torch.tensor([0.1, 0.3, -0.1])
    say(
        _Verbatim(
            f"   The tutorial's worked sum: token row {_short(token_row)} + position row {_short(position_row)} = "
            f"{_short(token_row + position_row)}"
        ),
        "   The same with the book's tables, position 0 of the first two windows, first 3 values:",
    )
    for b in (0, 1):
        token = repr(tokenizer.decode([int(inputs[b, 0])]))
        say(
            _Verbatim(f"     {'token row ' + token:<20} {_row(token_embeddings[b, 0, :3])}   wte(inputs)[{b}, 0]"),
            _Verbatim(f"   + {'position row 0':<20} {_row(position_embeddings[0, :3])}   wpe(arange({max_length}))[0]"),
            _Verbatim(f"   = {'output row':<20} {_row(embeddings[b, 0, :3])}   output[{b}, 0]"),
        )
    print(f"token + position embeddings: {tuple(inputs.shape)} -> {tuple(embeddings.shape)}")
    same = torch.equal(embeddings, token_embeddings + position_embeddings)
    say(f"   (HfEmbedModel(inputs).last_hidden_state equals wte(inputs) + wpe(arange({max_length})): {same})", "")

    # 7. 50257 -> 50304
    padded = -(-v // 64) * 64
    say(
        f"7. Why GPT-2's table often has {padded} rows: matrix multiplies run fastest on GPUs when sizes are "
        f"multiples of 64, and {v} is not; rounding up gives {padded} = {padded // 64} x 64 (nanoGPT does this)."
    )

    # 8. save, reload, compare
    save_folder(args.output, model, tokenizer)
    _write_demo_note(args.output)
    reloaded = AutoModel.from_pretrained(args.output).eval()
    reloaded_tokenizer = AutoTokenizer.from_pretrained(args.output)
    with torch.no_grad():
        same_output = torch.equal(reloaded(inputs).last_hidden_state, embeddings)
    same_ids = encode(reloaded_tokenizer, text) == ids
    if not (same_output and same_ids):
        raise RuntimeError(
            f"reload from {args.output} differs (embeddings equal: {same_output}, ids equal: {same_ids})"
        )
    if not args.quiet:
        original = reloaded.get_input_embeddings().weight.detach().clone()
        reloaded.resize_token_embeddings(v, pad_to_multiple_of=64, mean_resizing=False)
        table = reloaded.get_input_embeddings().weight
        kept = torch.equal(table[:v], original)
        say(
            f"   model.resize_token_embeddings({v}, pad_to_multiple_of=64) -> {tuple(table.shape)}: rows "
            f"0..{v - 1} unchanged ({kept}); rows {v}..{padded - 1} no token id reaches, and "
            f"config.unpadded_vocab_size = {reloaded.config.unpadded_vocab_size} says so (the saved model keeps "
            f"{v} rows).",
            "",
            "8. Save, reload, compare:",
        )
    print(f"saved to {args.output}/ and reloaded with AutoModel/AutoTokenizer: identical embeddings and token ids")
    return 0
