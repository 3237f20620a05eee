"""Commands on corpora: `tokenize`, `train-tokenizer`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .common import (
    check_empty_output,
    check_files,
    check_tokenizer_name,
    int_at_least,
    load_tokenizer,
    save_tokenizer,
)


def add_tokenize(subparsers) -> None:
    p = subparsers.add_parser(
        "tokenize",
        help="tokenize text files into one token file for training",
        description=(
            "Read UTF-8 text files (BOM dropped, line ends kept), tokenize them on all cores and write one token "
            "file: the ids (uint16 when the vocabulary fits, else uint32), where each document starts (each file "
            "is one), and a header naming the tokenizer and the sources. The file appears only when complete, "
            "replacing the previous one whole. Empty files are skipped with a warning. Open it with "
            "create_dataloader(pathlib.Path(OUTPUT)). With --format megatron, OUTPUT is a prefix and the ids go to "
            "Megatron's indexed dataset, OUTPUT.bin + OUTPUT.idx (one sequence per document), which Megatron-LM, "
            "NeMo, megatron-core and create_dataloader read."
        ),
    )
    p.add_argument("files", nargs="+", type=Path, help="UTF-8 text files, tokenized in the order given")
    p.add_argument("--output", type=Path, required=True, help="the token file to write (tokens.bin), or a prefix")
    p.add_argument(
        "--format",
        choices=["hf-embed", "megatron"],
        default="hf-embed",
        help="hf-embed's one-file format (default), or Megatron's OUTPUT.bin + OUTPUT.idx",
    )
    p.add_argument(
        "--split-documents-on",
        metavar="TEXT",
        type=_unescape,
        help="end a document after each occurrence of TEXT (kept in it), e.g. '\\n\\n' or '<|endoftext|>'; "
        "\\n, \\r, \\t and \\\\ are read as escapes. Default: each file is one document",
    )
    p.add_argument("--tokenizer", default="gpt2", help="'gpt2' (built in, offline) or a saved tokenizer folder")
    p.add_argument("--eos-between-files", action="store_true", help="put the eos token between files")
    p.add_argument("--dtype", choices=["uint16", "uint32"], help="token dtype (default: the smallest that fits)")
    p.add_argument("--threads", type=int_at_least(1), help="encoding threads (default: all cores)")
    p.add_argument("--num-shards", type=int_at_least(1), default=1, help="split the files into this many shards")
    p.add_argument("--shard-index", type=int_at_least(0), default=0, help="which shard this process writes (0-based)")
    p.set_defaults(func=_tokenize)


def _unescape(text: str) -> str:
    """The separator a shell passes as `\\n\\n`: \\n, \\r, \\t and \\\\ become the characters they name."""
    return re.sub(r"\\([nrt\\])", lambda m: {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[m.group(1)], text)


def _tokenize(args: argparse.Namespace) -> int:
    import time

    from ..atomic_write import check_output_is_not_an_input

    if args.shard_index >= args.num_shards:
        raise ValueError(f"--shard-index {args.shard_index} is outside 0..{args.num_shards - 1} (--num-shards)")
    check_files(args.files)
    check_tokenizer_name(args.tokenizer)
    outputs = [args.output]
    if args.format == "megatron":
        from ..megatron import prefix_of

        outputs = [Path(f"{prefix_of(args.output)}{suffix}") for suffix in (".bin", ".idx")]
        if args.dtype is not None:
            raise ValueError(f"--dtype {args.dtype}: Megatron's files take the dtype Megatron picks for the vocabulary")
    for output in outputs:
        check_output_is_not_an_input(output, args.files)  # before the tokenizer loads: fail at once

    from ..token_files import check_replaceable
    from ..tokenize_corpus import tokenize_files

    check_replaceable(args.output, output_format=args.format)  # before the tokenizer loads
    tokenizer = load_tokenizer(args.tokenizer)
    start = time.perf_counter()
    header = tokenize_files(
        args.files,
        args.output,
        tokenizer,
        eos_between_files=args.eos_between_files,
        dtype=args.dtype,
        num_threads=args.threads,
        shard_index=args.shard_index,
        num_shards=args.num_shards,
        split_documents_on=args.split_documents_on,
        output_format=args.format,
    )
    seconds = time.perf_counter() - start
    megabytes = sum(f["bytes"] for f in header["files"]) / 1e6
    skipped = len(header["skipped_empty_files"])
    print(
        f"{len(header['files'])} files{f' ({skipped} empty skipped)' if skipped else ''}, {megabytes:.1f} MB -> "
        f"{header['count']:,} {header['dtype']} tokens in {header['documents']:,} documents in "
        f"{' + '.join(map(str, outputs))} "
        f"({megabytes / seconds:.1f} MB/s, engine {header['engine']})"
    )
    return 0


def add_train_tokenizer(subparsers) -> None:
    p = subparsers.add_parser(
        "train-tokenizer",
        help="train a new GPT-2-style byte-level BPE vocabulary",
        description=(
            "Train a byte-level BPE with GPT-2's pre-tokenization and <|endoftext|> on UTF-8 text files, and save "
            "it as a transformers tokenizer folder that AutoTokenizer loads."
        ),
    )
    p.add_argument("files", nargs="+", type=Path, help="UTF-8 text files to learn from")
    p.add_argument(
        "--vocab-size",
        type=int_at_least(258),
        required=True,
        help="vocabulary size, the 256 bytes and <|endoftext|> included (at least 258)",
    )
    p.add_argument(
        "--min-frequency", type=int_at_least(0), default=2, help="merge only pairs seen this often (default: 2)"
    )
    p.add_argument("--output", type=Path, required=True, help="folder to save the tokenizer into")
    p.add_argument("--force", action="store_true", help="replace the tokenizer of a non-empty --output")
    p.set_defaults(func=_train_tokenizer)


def _train_tokenizer(args: argparse.Namespace) -> int:
    from ..atomic_write import check_output_is_not_an_input

    check_files(args.files)
    check_output_is_not_an_input(args.output, args.files)
    check_empty_output(args.output, args.force, replaces="its tokenizer")
    if all(path.stat().st_size == 0 for path in args.files):
        raise ValueError(f"all {len(args.files)} input files are empty: there is no text to learn a vocabulary from")

    from ..tokenization import train_tokenizer_from_iterator
    from ..tokenize_corpus import iter_text_chunks

    # The files are read as `tokenize` reads them (BOM dropped, cut where pre-tokenization cuts anyway), so a
    # file that is not UTF-8 is named with the byte where it fails, and the counts are those of whole files.
    texts = (chunk for path in args.files for chunk in iter_text_chunks(path))
    tokenizer = train_tokenizer_from_iterator(
        texts, vocab_size=args.vocab_size, min_frequency=args.min_frequency, show_progress=sys.stderr.isatty()
    )
    save_tokenizer(tokenizer, args.output)
    short = f" (asked for {args.vocab_size})" if len(tokenizer) < args.vocab_size else ""
    print(f"trained a byte-level BPE of {len(tokenizer)} tokens{short} -> {args.output}/")
    return 0
