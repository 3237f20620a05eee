"""The `hf-embed` command line.

Exit codes: 0 success, 2 usage error (argparse), 1 failure with a one-line message
(`--debug` shows the traceback), 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM). An
interrupted command removes what it had half written: SIGTERM is raised as an exception in the main
thread, like SIGINT, so that every writer's cleanup runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback

from ..sample_text import SAMPLE_TEXT  # re-exported: scripts and tests used it from here
from . import corpus, demo, models, plots
from .common import configure_logging

logger = logging.getLogger("hf_embed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-embed",
        description="The embedding stage of a GPT-style model as a Hugging Face component.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    parser.add_argument("--version", action=_VersionAction, help="show the versions and exit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_demo(subparsers)
    models.add_init(subparsers)
    models.add_embed(subparsers)
    models.add_inspect(subparsers)
    models.add_resize(subparsers)
    models.add_push(subparsers)
    plots.add_plot_positions(subparsers)
    plots.add_plot_tokens(subparsers)
    corpus.add_tokenize(subparsers)
    corpus.add_train_tokenizer(subparsers)
    return parser


def _version() -> str:
    """`hf-embed 0.1.0 (torch 2.13.0, transformers 5.24.0, ...)` from the installed metadata (no imports)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    names = ("torch", "transformers", "tokenizers", "huggingface-hub")
    others = ", ".join(f"{name} {installed(name)}" for name in names)
    return f"hf-embed {installed('hf-embed')} ({others})"


class _VersionAction(argparse.Action):
    """`--version`, with the versions looked up only when asked for (the parser is built on every call)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread, as SIGINT raises `KeyboardInterrupt`)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def _disable_hub_progress_bars() -> None:
    """No per-file bars from transformers and huggingface_hub (our long jobs show their own), without importing
    them: commands that never load a model must not pay for the import."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when huggingface_hub is imported (transformers follows)
    hub_utils = sys.modules.get("huggingface_hub.utils")
    if hub_utils is not None:  # imported already: tell it, and transformers, directly
        hub_utils.disable_progress_bars()
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None:
        hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.command, debug=args.debug)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        _disable_hub_progress_bars()
        return args.func(args)
    except (KeyboardInterrupt, Terminated) as signalled:
        if args.debug:
            traceback.print_exc()
        interrupted = isinstance(signalled, KeyboardInterrupt)
        print(f"hf-embed {args.command}: {'interrupted' if interrupted else 'terminated'}", file=sys.stderr)
        return 128 + (signal.SIGINT if interrupted else signal.SIGTERM)
    except Exception as error:  # one line, unless asked for the traceback
        if args.debug:
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"hf-embed {args.command}: error: {message or type(error).__name__}", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


__all__ = ["SAMPLE_TEXT", "build_parser", "main"]
