"""The `hf-embed` command line.

Exit codes: 0 success, 2 usage error (argparse), 1 failure with a one-line message
(`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..sample_text import SAMPLE_TEXT  # re-exported: scripts and tests used it from here
from . import corpus, demo, models, plots

logger = logging.getLogger("hf_embed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-embed",
        description="The embedding stage of a GPT-style model as a Hugging Face component.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_demo(subparsers)
    models.add_init(subparsers)
    models.add_embed(subparsers)
    models.add_inspect(subparsers)
    models.add_push(subparsers)
    plots.add_plot_positions(subparsers)
    corpus.add_tokenize(subparsers)
    corpus.add_train_tokenizer(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # transformers' per-file bars; our long jobs show their own
    try:
        return args.func(args)
    except Exception as error:  # one line, unless asked for the traceback
        if args.debug:
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"hf-embed {args.command}: error: {message or type(error).__name__}", file=sys.stderr)
        return 1


__all__ = ["SAMPLE_TEXT", "build_parser", "main"]
