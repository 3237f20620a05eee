"""`hf-embed plot-positions`: pictures of what a position scheme encodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import POSITION_EMBEDDING_TYPES, check_model_folder, int_at_least, path_with_suffix, preset_names


def add_plot_positions(subparsers) -> None:
    p = subparsers.add_parser(
        "plot-positions",
        help="write a PNG heatmap of position-to-position cosine similarity",
        description=(
            "Show what a position scheme encodes: cosine similarity between the vectors of every pair of "
            "positions (for the relative scheme: of every pair of clipped distances -k..k). Red is +1, white 0, "
            "blue -1."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a saved hf-embed model folder")
    source.add_argument("--preset", choices=preset_names(), help="a preset (randomly initialized), e.g. gpt2")
    p.add_argument(
        "--position-embedding-type",
        choices=POSITION_EMBEDDING_TYPES,
        help="with --preset: override the position scheme",
    )
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
        type=path_with_suffix(".png"),
        default=Path("positions.png"),
        help="PNG to write (default: %(default)s)",
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
    if args.model is not None:
        check_model_folder(args.model)
        if args.position_embedding_type or args.rope_parameters:
            raise ValueError(
                "--position-embedding-type and --rope-parameters go with --preset; a saved model keeps its own"
            )

    from .. import HfEmbedModel
    from ..visualize import plot_position_similarity

    if args.model is not None:
        model = HfEmbedModel.from_pretrained(args.model)
    else:
        model = _preset_positions(args)
    similarity = plot_position_similarity(model, args.output, args.positions)
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

    overrides = {}
    if args.position_embedding_type:
        overrides["position_embedding_type"] = args.position_embedding_type
    if args.rope_parameters:
        overrides.setdefault("position_embedding_type", "rotary")
        overrides["rope_parameters"] = args.rope_parameters
    config = HfEmbedConfig.from_preset(args.preset, **overrides)
    with torch.device("meta"):
        model = HfEmbedModel(config)
    model.embeddings.wpe.to_empty(device="cpu")  # a learned table: drawn as at construction; sinusoid: computed
    init_embedding_module(model.embeddings.wpe, config.initializer_range)
    return model
