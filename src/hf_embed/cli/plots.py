"""`hf-embed plot-positions` and `plot-tokens`: pictures of what a model's tables hold (matplotlib)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    PICTURE_SUFFIXES,
    check_matplotlib,
    check_model_folder,
    check_output_file,
    int_at_least,
    path_with_suffix,
    preset_names,
    preset_or_file,
)
from .models import add_model_shape_options, shape_overrides


def add_plot_positions(subparsers) -> None:
    p = subparsers.add_parser(
        "plot-positions",
        help="draw position-to-position cosine similarity as a heatmap (PNG, SVG or PDF)",
        description=(
            "Show what a position scheme encodes: cosine similarity between the vectors of every pair of "
            "positions (for the relative scheme: of every pair of clipped distances -k..k), with position "
            "numbers on the axes and a colour bar (red +1, white 0, blue -1). The format follows the suffix of "
            "--output. Needs matplotlib: pip install 'hf-embed[plot]'."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a saved hf-embed model folder")
    source.add_argument(
        "--preset",
        type=preset_or_file,
        metavar="NAME|FILE.json",
        help=f"a preset ({', '.join(preset_names())}) or a JSON file of settings, randomly initialized",
    )
    add_model_shape_options(p)
    p.add_argument("--seed", type=int, default=0, help="with --preset: torch seed for learned tables (default: 0)")
    p.add_argument(
        "--rope-parameters",
        type=_json_object,
        metavar="JSON",
        help="with --preset: a rotary scheme's transformers rope_parameters, to see a scaling rule, e.g. "
        '\'{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256}\' (implies rotary)',
    )
    p.add_argument(
        "--positions",
        type=int_at_least(1),
        help="how many positions to show (default: max_position_embeddings, at most 1024)",
    )
    p.add_argument(
        "--output",
        type=path_with_suffix(*PICTURE_SUFFIXES),
        default=Path("positions.png"),
        help="a .png, .svg or .pdf file (default: %(default)s)",
    )
    p.set_defaults(func=_plot_positions)


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'expected a JSON object such as \'{{"rope_type": "linear"}}\', got {text!r}')
    return value


def _plot_positions(args: argparse.Namespace) -> int:
    check_output_file(args.output)
    shape_options = ("position_embedding_type", "hidden_size", "max_positions", "head_dim", "rope_parameters")
    if args.model is not None:
        given = [f"--{o.replace('_', '-')}" for o in shape_options if getattr(args, o) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --preset (a saved model has its own)")
        check_model_folder(args.model, "--model")
    check_matplotlib()  # before anything loads: the message says how to install it

    from .. import HfEmbedModel
    from ..visualize import plot_position_similarity

    if args.model is not None:
        model = HfEmbedModel.from_pretrained(args.model)
        name = args.model.resolve().name
    else:
        model = _preset_positions(args)
        learned = model.config.position_embedding_type in ("absolute", "relative")
        name = f"preset {args.preset}{' (untrained)' if learned else ''}"
    similarity = plot_position_similarity(model, args.output, args.positions, name=name)
    n = similarity.shape[0]
    c = model.config
    what = "clipped distances" if c.position_embedding_type == "relative" else "positions"
    scheme = c.position_embedding_type
    if scheme == "rotary" and c.rope_parameters["rope_type"] != "default":
        scheme = f"rotary ({c.rope_parameters['rope_type']})"  # a scaling rule
    print(f"{scheme}: {n} x {n} cosine similarities of {what} -> {args.output}")
    return 0


def _preset_positions(args: argparse.Namespace):
    """A preset's model with its position module only: the token table (gigabytes for Llama 3's) stays on meta."""
    import torch

    from .. import HfEmbedConfig, HfEmbedModel
    from ..position_embeddings import init_embedding_module

    if args.rope_parameters and args.position_embedding_type is None:
        args.position_embedding_type = "rotary"  # a scaling rule implies the rotary scheme (and its head_dim)
    overrides = shape_overrides(args, HfEmbedConfig.from_preset(args.preset).to_dict())
    if args.rope_parameters:
        overrides["rope_parameters"] = args.rope_parameters
    config = HfEmbedConfig.from_preset(args.preset, **overrides)
    with torch.device("meta"):
        model = HfEmbedModel(config)
    model.embeddings.wpe.to_empty(device="cpu")  # a learned table: drawn as at construction; sinusoid: computed
    torch.manual_seed(args.seed)
    init_embedding_module(model.embeddings.wpe, config.initializer_range)
    return model


def add_plot_tokens(subparsers) -> None:
    p = subparsers.add_parser(
        "plot-tokens",
        help="draw chosen tokens' embeddings in 2-D (PCA) with their labels (PNG, SVG or PDF)",
        description=(
            "Project the token-table rows (wte) of the chosen tokens of a saved model onto their first two "
            "principal components (torch.pca_lowrank) and draw them, labelled. Tokens are given as text, each "
            "one token of the model folder's tokenizer (GPT-2 tokens carry their leading space: ' king' and "
            "'king' are different tokens), or as ids. The format follows the suffix of --output. Needs "
            "matplotlib: pip install 'hf-embed[plot]'."
        ),
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder (with its tokenizer, for --tokens)")
    chosen = p.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--tokens", nargs="+", help="tokens as text, e.g. ' king' ' queen' ' man' ' woman'")
    chosen.add_argument("--ids", nargs="+", type=int, help="token ids")
    p.add_argument(
        "--output",
        type=path_with_suffix(*PICTURE_SUFFIXES),
        default=Path("tokens.png"),
        help="a .png, .svg or .pdf file (default: %(default)s)",
    )
    p.set_defaults(func=_plot_tokens)


def _label(text: str) -> str:
    """A token as a reader can see it: leading and trailing spaces shown as '␣', line ends escaped."""
    stripped = text.strip(" ")
    lead, trail = len(text) - len(text.lstrip(" ")), len(text) - len(text.rstrip(" "))
    shown = "␣" * lead + stripped + "␣" * trail if stripped else "␣" * len(text)
    return shown.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def _plot_tokens(args: argparse.Namespace) -> int:
    check_output_file(args.output)
    check_model_folder(args.model)
    has_tokenizer = (args.model / "tokenizer_config.json").is_file()
    if args.tokens is not None and not has_tokenizer:
        raise FileNotFoundError(f"--tokens needs a tokenizer, and {args.model} has none (use --ids)")
    check_matplotlib()

    from transformers import AutoTokenizer

    from .. import HfEmbedModel
    from ..visualize import save_figure, token_map_figure

    tokenizer = AutoTokenizer.from_pretrained(args.model) if has_tokenizer else None
    if args.tokens is not None:
        assert tokenizer is not None  # --tokens without a tokenizer was refused before anything loaded
        ids = []
        for token in args.tokens:
            pieces = tokenizer(token, add_special_tokens=False)["input_ids"]
            if len(pieces) != 1:
                shown = tokenizer.convert_ids_to_tokens(pieces)
                raise ValueError(f"--tokens {token!r} is {len(pieces)} tokens {shown}; give single tokens")
            ids.extend(pieces)
    else:
        ids = args.ids
    model = HfEmbedModel.from_pretrained(args.model)
    if tokenizer is not None and all(0 <= i < len(tokenizer) for i in ids):
        # decode of one id list is a str; transformers' annotation also covers decoding a batch
        labels = [_label(tokenizer.decode([i])) for i in ids]  # type: ignore[arg-type]
    else:
        labels = [str(i) for i in ids]
    caption = "␣ marks a space that is part of the token" if any("␣" in label for label in labels) else None
    figure, _ = token_map_figure(model, ids, labels, name=args.model.resolve().name, caption=caption)
    save_figure(figure, args.output)
    print(f"{len(ids)} tokens of {args.model}, PCA to 2-D -> {args.output}")
    return 0
