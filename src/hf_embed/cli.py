"""The `hf-embed` command line.

Exit codes: 0 success, 2 usage error (argparse), 1 failure with a one-line message
(`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger("hf_embed")

# Written for hf-embed (not taken from any book), long enough for several windows of the demo.
SAMPLE_TEXT = """\
The lighthouse keeper counted the ships every evening, writing each name in a ledger that
smelled of salt and lamp oil. Nobody had asked him to do it. The harbour master kept better
records, and the shipping company kept better ones still, but the keeper liked the feeling of
the pen moving across the page while the beam swept the water behind him.

One winter a ship came in without a name. Its hull was painted grey, its flag was folded, and
its crew would not say where they had sailed from. The keeper wrote a blank line in his ledger
and stared at it for a long time. In the morning the ship was gone, and the blank line was
still there, as plain as a question.

He never filled it in. Years later, when the ledger was given to the town library, readers
would stop at that empty line and wonder, each of them inventing a story to fit the space.
"""


def _add_demo(subparsers) -> None:
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
    import torch
    from transformers import AutoModel, AutoTokenizer

    from . import HfEmbedConfig, HfEmbedModel, create_dataloader, gpt2_tokenizer
    from .tokenization import check_vocab_compatible

    text = SAMPLE_TEXT if args.text_file is None else _read_text(args.text_file)
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

    model.save_pretrained(args.output)
    _save_tokenizer(tokenizer, args.output)
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


def _add_plot_positions(subparsers) -> None:
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
    source.add_argument("--preset", help="a preset name (randomly initialized), e.g. gpt2")
    p.add_argument(
        "--position-embedding-type", help="with --preset: override the scheme (absolute, sinusoidal, rotary, relative)"
    )
    p.add_argument("--positions", type=int, help="how many positions to show (default: max_position_embeddings)")
    p.add_argument("--output", type=Path, default=Path("positions.png"), help="PNG to write (default: %(default)s)")
    p.set_defaults(func=_plot_positions)


def _plot_positions(args: argparse.Namespace) -> int:
    from . import HfEmbedConfig, HfEmbedModel
    from .visualize import plot_position_similarity

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


def _load_tokenizer(name: str):
    from transformers import AutoTokenizer

    from . import gpt2_tokenizer

    return gpt2_tokenizer() if name == "gpt2" else AutoTokenizer.from_pretrained(name)


def _add_tokenize(subparsers) -> None:
    p = subparsers.add_parser(
        "tokenize",
        help="tokenize text files into one token file (+ JSON header) for training",
        description=(
            "Read UTF-8 text files (BOM dropped, line ends kept), tokenize them on all cores and write one flat "
            "token file (uint16 when the vocabulary fits, else uint32) plus OUTPUT.json describing it. The file "
            "appears only when complete. Open it with hf_embed.data.TokenFileDataset or create_dataloader(Path)."
        ),
    )
    p.add_argument("files", nargs="+", type=Path, help="UTF-8 text files, tokenized in the order given")
    p.add_argument("--output", type=Path, required=True, help="the token file to write, e.g. tokens.bin")
    p.add_argument("--tokenizer", default="gpt2", help="'gpt2' (built in, offline) or a saved tokenizer folder")
    p.add_argument("--eos-between-files", action="store_true", help="put the eos token between files")
    p.add_argument("--dtype", choices=["uint16", "uint32"], help="token dtype (default: the smallest that fits)")
    p.add_argument("--threads", type=int, help="encoding threads (default: all cores)")
    p.add_argument("--num-shards", type=int, default=1, help="split the files into this many shards")
    p.add_argument("--shard-index", type=int, default=0, help="which shard this process writes (0-based)")
    p.set_defaults(func=_tokenize)


def _tokenize(args: argparse.Namespace) -> int:
    import time

    from .data import tokenize_files

    tokenizer = _load_tokenizer(args.tokenizer)
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
    )
    seconds = time.perf_counter() - start
    megabytes = sum(f["bytes"] for f in header["files"]) / 1e6
    print(
        f"{len(header['files'])} files, {megabytes:.1f} MB -> {header['count']:,} {header['dtype']} tokens in "
        f"{args.output} ({megabytes / seconds:.1f} MB/s, engine {header['engine']})"
    )
    return 0


def _add_train_tokenizer(subparsers) -> None:
    p = subparsers.add_parser(
        "train-tokenizer",
        help="train a new GPT-2-style byte-level BPE vocabulary",
        description=(
            "Train a byte-level BPE with GPT-2's pre-tokenization and <|endoftext|> on UTF-8 text files, and save "
            "it as a transformers tokenizer folder that AutoTokenizer loads."
        ),
    )
    p.add_argument("files", nargs="+", type=Path, help="UTF-8 text files to learn from")
    p.add_argument("--vocab-size", type=int, required=True, help="vocabulary size, bytes and <|endoftext|> included")
    p.add_argument("--min-frequency", type=int, default=2, help="merge only pairs seen this often (default: 2)")
    p.add_argument("--output", type=Path, required=True, help="folder to save the tokenizer into")
    p.set_defaults(func=_train_tokenizer)


def _train_tokenizer(args: argparse.Namespace) -> int:
    from .tokenization import train_tokenizer

    for path in args.files:
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a text file")
    tokenizer = train_tokenizer(
        args.files, args.vocab_size, min_frequency=args.min_frequency, files=True, show_progress=sys.stderr.isatty()
    )
    _save_tokenizer(tokenizer, args.output)
    print(f"trained a byte-level BPE of {len(tokenizer)} tokens -> {args.output}/")
    return 0


def _add_init(subparsers) -> None:
    p = subparsers.add_parser(
        "init",
        help="create a model folder (model + tokenizer) from a preset or a GPT-2 checkpoint",
        description="Build an HfEmbedModel from a preset (randomly initialized) or from a transformers GPT-2 "
        "checkpoint's tables, and save it with its tokenizer into a folder that AutoModel/AutoTokenizer load.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", default="gpt2", help="preset name (default: %(default)s)")
    source.add_argument("--from-gpt2", help="a GPT-2 folder or Hub id whose wte/wpe to import")
    p.add_argument("--position-embedding-type", help="absolute, sinusoidal, rotary, relative or none")
    p.add_argument("--tokenizer", default="gpt2", help="'gpt2' (built in) or a saved tokenizer folder")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the initial tables (default: %(default)s)")
    p.add_argument("--output", type=Path, required=True, help="folder to create")
    p.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
    import torch

    from . import HfEmbedConfig, HfEmbedModel
    from .tokenization import check_vocab_compatible

    overrides = {}
    if args.position_embedding_type:
        overrides["position_embedding_type"] = args.position_embedding_type
    torch.manual_seed(args.seed)
    if args.from_gpt2:
        model = HfEmbedModel.from_gpt2(args.from_gpt2, **overrides)
    else:
        model = HfEmbedModel(HfEmbedConfig.from_preset(args.preset, **overrides))
    tokenizer = _load_tokenizer(args.tokenizer)
    check_vocab_compatible(model.config, tokenizer)
    model.save_pretrained(args.output)
    _save_tokenizer(tokenizer, args.output)
    c = model.config
    print(
        f"{args.output}/: {c.vocab_size} x {c.hidden_size} tokens, {c.position_embedding_type} positions up to "
        f"{c.max_position_embeddings}, {model.num_parameters():,} parameters"
    )
    return 0


def _add_embed(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="embed a text or a file with a saved model; write the embeddings as safetensors or .npy",
        description="Tokenize with the model folder's tokenizer, run the embedding stage, and save "
        "`embeddings` (1, T, D) and `input_ids` (1, T). The format follows the output's suffix: .safetensors or .npy.",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder (with its tokenizer)")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the text to embed")
    text.add_argument("--file", type=Path, help="a UTF-8 file to embed")
    p.add_argument("--output", type=Path, required=True, help="embeddings.safetensors or embeddings.npy")
    p.add_argument("--truncate", action="store_true", help="cut the ids to max_position_embeddings")
    p.set_defaults(func=_embed)


def _embed(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from . import HfEmbedModel
    from .modeling_hf_embed import write_file_atomically

    if args.output.suffix not in (".safetensors", ".npy"):
        raise ValueError(f"--output must end in .safetensors or .npy, got {args.output.name!r}")
    model = HfEmbedModel.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    text = args.text if args.text is not None else _read_text(args.file)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    limit = model.config.max_position_embeddings
    if len(ids) > limit:
        if not args.truncate:
            raise ValueError(
                f"the text is {len(ids)} tokens, more than max_position_embeddings ({limit}); "
                "pass --truncate to keep the first ones"
            )
        ids = ids[:limit]
    input_ids = torch.tensor([ids])
    with torch.no_grad():
        embeddings = model(input_ids).last_hidden_state.contiguous()
    if args.output.suffix == ".npy":
        write_file_atomically(args.output, lambda path: np.save(path, embeddings.float().numpy()))
    else:
        write_file_atomically(
            args.output, lambda path: save_file({"embeddings": embeddings, "input_ids": input_ids}, path)
        )
    shapes = f"input_ids {tuple(input_ids.shape)} -> embeddings {tuple(embeddings.shape)} {embeddings.dtype}"
    print(f"{shapes} -> {args.output}")
    return 0


def _add_inspect(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show a saved model's sizes, dtype, position scheme and nearest tokens",
        description="Print a saved model's configuration summary and parameter count; with --token, the tokens "
        "whose embeddings are nearest to it by cosine similarity.",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder")
    p.add_argument("--token", help="a word or token to find the neighbours of (uses the folder's tokenizer)")
    p.add_argument("--top", type=int, default=10, help="how many neighbours (default: %(default)s)")
    p.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    import torch
    import torch.nn.functional as F
    from transformers import AutoTokenizer

    from . import HfEmbedModel

    model = HfEmbedModel.from_pretrained(args.model)
    c = model.config
    print(f"model:      {args.model}")
    print(f"vocabulary: {c.vocab_size}")
    print(f"hidden:     {c.hidden_size}")
    print(f"positions:  {c.position_embedding_type}, max {c.max_position_embeddings}")
    print(f"dtype:      {str(model.dtype).removeprefix('torch.')}")
    print(f"parameters: {model.num_parameters():,}")
    if args.token is None:
        return 0
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    ids = tokenizer(args.token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"{args.token!r} is {len(ids)} tokens {pieces}; give a single token")
    table = model.get_input_embeddings().weight.detach().float()
    similarity = F.cosine_similarity(table, table[ids[0]].unsqueeze(0), dim=-1)  # (V,)
    top = torch.topk(similarity, min(args.top + 1, len(similarity)))
    print(f"nearest to {args.token!r} (id {ids[0]}) by cosine similarity:")
    for score, index in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        if index != ids[0]:
            print(f"  {score:+.3f}  {index:>6}  {tokenizer.decode([index])!r}")
    return 0


def _add_push(subparsers) -> None:
    p = subparsers.add_parser(
        "push",
        help="upload a saved model folder (weights, code, tokenizer, model card) to the Hub",
        description="Load a saved hf-embed model folder and push it with its tokenizer and a generated model "
        "card. The token comes from --token, HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder")
    p.add_argument("repo_id", help="the Hub repository, e.g. user/my-embeddings")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--token", help="a Hub token (default: HF_TOKEN or the saved login)")
    p.add_argument("--license", default="apache-2.0", help="license for the model card (default: %(default)s)")
    p.set_defaults(func=_push)


def _push(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from . import HfEmbedModel
    from .hub import push

    model = HfEmbedModel.from_pretrained(args.model)
    tokenizer = None
    if (args.model / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    info = push(model, tokenizer, args.repo_id, token=args.token, private=args.private or None, license=args.license)
    print(f"pushed {args.model} to {args.repo_id}: commit {info.oid}")
    return 0


def _save_tokenizer(tokenizer, folder: Path) -> None:
    from .modeling_hf_embed import write_folder_atomically

    write_folder_atomically(folder, tokenizer.save_pretrained)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 at byte {error.start}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-embed",
        description="The embedding stage of a GPT-style model as a Hugging Face component.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(subparsers)
    _add_init(subparsers)
    _add_embed(subparsers)
    _add_inspect(subparsers)
    _add_push(subparsers)
    _add_plot_positions(subparsers)
    _add_tokenize(subparsers)
    _add_train_tokenizer(subparsers)
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


if __name__ == "__main__":
    sys.exit(main())
