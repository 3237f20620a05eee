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
        "--positions", type=int_at_least(1), help="how many positions to show (default: max_position_embeddings)"
    )
    p.add_argument(
        "--output",
        type=path_with_suffix(".png"),
        default=Path("positions.png"),
        help="PNG to write (default: %(default)s)",
    )
    p.set_defaults(func=_plot_positions)


def _plot_positions(args: argparse.Namespace) -> int:
    if args.model is not None:
        check_model_folder(args.model)
        if args.position_embedding_type:
            raise ValueError("--position-embedding-type goes with --preset; a saved model keeps its own scheme")

    from .. import HfEmbedConfig, HfEmbedModel
    from ..visualize import plot_position_similarity

    if args.model is not None:
        model = HfEmbedModel.from_pretrained(args.model)
    else:
        overrides = {}
        if args.position_embedding_type:
            overrides["position_embedding_type"] = args.position_embedding_type
        model = HfEmbedModel(HfEmbedConfig.from_preset(args.preset, **overrides))
    similarity = plot_position_similarity(model, args.output, args.positions)
    n = similarity.shape[0]
    what = "clipped distances" if model.config.position_embedding_type == "relative" else "positions"
    print(f"{model.config.position_embedding_type}: {n} x {n} cosine similarities of {what} -> {args.output}")
    return 0
