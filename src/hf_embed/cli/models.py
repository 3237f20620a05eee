"""Commands on model folders: `init`, `embed`, `inspect`, `resize`, `push`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import (
    POSITION_EMBEDDING_TYPES,
    check_empty_output,
    check_files,
    check_model_folder,
    check_output_file,
    check_tokenizer_name,
    int_at_least,
    load_tokenizer,
    looks_local,
    path_with_suffix,
    preset_names,
    preset_or_file,
    read_text,
    save_folder,
)

DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_HEAD_DIM = 64  # GPT-2's and Llama's width per attention head


def add_model_shape_options(p: argparse.ArgumentParser) -> None:
    """The size options `init` and `plot-positions --preset` share; each maps onto one config field."""
    p.add_argument("--position-embedding-type", choices=POSITION_EMBEDDING_TYPES, help="the position scheme")
    p.add_argument("--hidden-size", type=int_at_least(1), help="embedding width (default: the preset's)")
    p.add_argument(
        "--max-positions",
        type=int_at_least(1),
        help="longest sequence, max_position_embeddings (default: the preset's)",
    )
    p.add_argument(
        "--head-dim",
        type=int_at_least(1),
        help=f"rotary and relative schemes: width of the position vectors, one attention head's width (default: "
        f"{DEFAULT_HEAD_DIM} where it divides the hidden size, as in GPT-2 and Llama, else the whole hidden size)",
    )


def shape_overrides(args: argparse.Namespace, preset: dict | None = None) -> dict:
    """Config overrides from the size options; the per-head default for rotary and relative positions."""
    overrides = {}
    for option, field in [
        ("position_embedding_type", "position_embedding_type"),
        ("hidden_size", "hidden_size"),
        ("max_positions", "max_position_embeddings"),
        ("head_dim", "head_dim"),
    ]:
        if getattr(args, option, None) is not None:
            overrides[field] = getattr(args, option)
    scheme = overrides.get("position_embedding_type", (preset or {}).get("position_embedding_type"))
    if scheme in ("rotary", "relative") and "head_dim" not in overrides and (preset or {}).get("head_dim") is None:
        hidden = overrides.get("hidden_size", (preset or {}).get("hidden_size", 768))
        overrides["head_dim"] = DEFAULT_HEAD_DIM if hidden % DEFAULT_HEAD_DIM == 0 else hidden
    return overrides


def add_init(subparsers) -> None:
    p = subparsers.add_parser(
        "init",
        help="create a model folder (model + tokenizer) from a preset or a GPT-2 checkpoint",
        description="Build an HfEmbedModel from a preset (randomly initialized) or from a transformers GPT-2 "
        "checkpoint's tables, and save it with its tokenizer into a folder that AutoModel/AutoTokenizer load. "
        "The vocabulary size and the special-token ids (bos, eos, pad) come from the tokenizer, and the saved "
        "tokenizer's model_max_length is the model's max_position_embeddings.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--preset",
        default="gpt2",
        type=preset_or_file,
        metavar="NAME|FILE.json",
        help=f"a preset ({', '.join(preset_names())}) or a JSON file of settings, e.g. from the repository's configs/ "
        "(default: %(default)s)",
    )
    source.add_argument("--from-gpt2", help="a GPT-2 folder or Hub id whose wte/wpe to import")
    p.add_argument("--tokenizer", default="gpt2", help="'gpt2' (built in) or a saved tokenizer folder")
    p.add_argument(
        "--vocab-size",
        type=int_at_least(1),
        help="rows of the token table (default: the tokenizer's size; more pads the table, e.g. 50304 for "
        "GPT-2's 50257 ids rounded up to a multiple of 64; fewer than the tokenizer's ids is refused)",
    )
    add_model_shape_options(p)
    p.add_argument("--dtype", choices=DTYPES, help="dtype of the saved tables (default: float32)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the initial tables (default: %(default)s)")
    p.add_argument("--output", type=Path, required=True, help="folder to create")
    p.add_argument("--force", action="store_true", help="replace the model and tokenizer of a non-empty --output")
    p.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
    check_empty_output(args.output, args.force)
    check_tokenizer_name(args.tokenizer)
    if args.from_gpt2:
        sizes = [f"--{n.replace('_', '-')}" for n in ("vocab_size", "hidden_size", "max_positions") if getattr(args, n)]
        if sizes:
            raise ValueError(f"{', '.join(sizes)}: the table sizes of --from-gpt2 are the checkpoint's")
        if looks_local(args.from_gpt2):  # else a Hub id
            check_model_folder(Path(args.from_gpt2), "--from-gpt2")

        from ..atomic_write import check_output_is_not_an_input

        check_output_is_not_an_input(args.output, [args.from_gpt2])

    import torch

    from .. import HfEmbedConfig, HfEmbedModel
    from ..tokenization import vocab_size_of

    if args.from_gpt2:
        from transformers import AutoConfig

        preset = {"hidden_size": AutoConfig.from_pretrained(args.from_gpt2).hidden_size}  # for the head_dim default
    else:
        preset = HfEmbedConfig.from_preset(args.preset).to_dict()  # an unknown name fails here, listing them
    tokenizer = load_tokenizer(args.tokenizer)
    ids = vocab_size_of(tokenizer)
    special = {f"{name}_token_id": getattr(tokenizer, f"{name}_token_id", None) for name in ("bos", "eos", "pad")}
    overrides = shape_overrides(args, preset)
    torch.manual_seed(args.seed)
    if args.from_gpt2:
        model = HfEmbedModel.from_gpt2(args.from_gpt2, **overrides)
        for name, value in special.items():
            setattr(model.config, name, value)  # the tokenizer's, as for a preset
        rows = model.config.vocab_size
        if ids < rows:
            model.config.unpadded_vocab_size = ids  # rows past the tokenizer's ids are padding
        if ids > rows:
            raise ValueError(
                f"--tokenizer {args.tokenizer} produces {ids} ids but the GPT-2 checkpoint {args.from_gpt2} has "
                f"{rows} token rows: ids {rows}..{ids - 1} would have no row; give the checkpoint's own tokenizer"
            )
    else:
        rows, given = args.vocab_size, f"--vocab-size {args.vocab_size}"
        if rows is None and args.preset.endswith(".json"):  # a settings file's vocab_size counts as --vocab-size
            rows = json.loads(Path(args.preset).read_text(encoding="utf-8")).get("vocab_size")
            given = f"{args.preset}: vocab_size {rows}"
        rows = ids if rows is None else rows
        if rows < ids:
            raise ValueError(
                f"{given} is smaller than the tokenizer's {ids} ids: ids {rows}..{ids - 1} would have no row in the "
                f"table; give at least {ids}, or leave it out to take the tokenizer's size"
            )
        # inspect and the LM head skip padding rows; the tokenizer decides, whatever a settings file says
        padding = {"unpadded_vocab_size": ids if rows > ids else None}
        config = HfEmbedConfig.from_preset(args.preset, vocab_size=rows, **overrides, **special, **padding)
        model = HfEmbedModel(config)
    if args.dtype:
        model = model.to(getattr(torch, args.dtype))
    c = model.config
    tokenizer.model_max_length = c.max_position_embeddings  # so that truncation=True cuts where the model must
    save_folder(args.output, model, tokenizer)
    unused = f", rows {ids}..{rows - 1} unused by the tokenizer" if rows > ids else ""
    head = f" (head_dim {c.head_dim})" if c.position_embedding_type in ("rotary", "relative") else ""
    print(
        f"{args.output}/: {c.vocab_size} x {c.hidden_size} tokens, {c.position_embedding_type} positions up to "
        f"{c.max_position_embeddings}{head}, {str(model.dtype).removeprefix('torch.')}, "
        f"{model.num_parameters():,} parameters"
    )
    names = ", ".join(f"{k.removesuffix('_token_id')} {v}" for k, v in special.items() if v is not None)
    print(
        f"tokenizer {args.tokenizer}: {ids} ids{unused}; {names or 'no special tokens'}; "
        f"model_max_length {tokenizer.model_max_length}"
    )
    return 0


EMBED_SUFFIXES = (".safetensors", ".npz", ".npy")


def add_embed(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="embed texts (one per line, or whole files) with a saved model; write safetensors, .npz or .npy",
        description="Tokenize with the model folder's tokenizer and run the embedding stage in batches (each batch "
        "padded to its longest row, pads masked). Writes `embeddings` ((rows, T, D) with --pooling none: pads are "
        "zeros; (rows, D) with mean or last), `input_ids` and `attention_mask` ((rows, T), padded), and for each "
        "row `text_index` (which text: for --lines the 0-based line number) and `window_start` (its first "
        "token's offset in the text). .safetensors and .npz hold them all; .npy holds the embeddings alone. "
        "A text longer than --max-length is refused unless --truncate keeps its first tokens or --stride cuts it "
        "into windows (one row each).",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder (with its tokenizer)")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", action="append", help="a text to embed (repeat the option for several)")
    text.add_argument("--lines", type=Path, help="a UTF-8 file of texts, one per line (blank lines skipped)")
    text.add_argument("--file", type=Path, help="a UTF-8 file embedded as one text (use --stride when it is long)")
    p.add_argument(
        "--output", type=path_with_suffix(*EMBED_SUFFIXES), required=True, help="embeddings.safetensors, .npz or .npy"
    )
    p.add_argument(
        "--pooling",
        choices=["none", "mean", "last"],
        default="none",
        help="none: a vector per token; mean: the average over each row's tokens (pads excluded); last: the "
        "row's last token (default: %(default)s)",
    )
    p.add_argument("--batch-size", type=int_at_least(1), default=32, help="rows per forward pass (default: 32)")
    p.add_argument(
        "--max-length", type=int_at_least(1), help="tokens per row (default and limit: max_position_embeddings)"
    )
    long = p.add_mutually_exclusive_group()
    long.add_argument("--truncate", action="store_true", help="keep the first --max-length tokens of a long text")
    long.add_argument(
        "--stride",
        type=int_at_least(1),
        help="cut a long text into windows of --max-length tokens, one starting every STRIDE tokens (the book's "
        "stride: equal to --max-length, the windows do not overlap; smaller, they do), until the text is covered",
    )
    p.set_defaults(func=_embed)


def _windows(length: int, max_length: int, stride: int) -> list[int]:
    """Start offsets of windows of `max_length` tokens every `stride` tokens, until one reaches the end."""
    starts = [0]
    while starts[-1] + max_length < length:
        starts.append(starts[-1] + stride)
    return starts


def _embed(args: argparse.Namespace) -> int:
    from ..atomic_write import check_output_is_not_an_input, write_file_atomically

    check_model_folder(args.model)
    source = args.lines or args.file
    if source is not None:
        check_files([source], "--lines" if args.lines else "--file")
    check_output_file(args.output)
    # The output may be neither the text nor a file of the model folder (its weights, say).
    check_output_is_not_an_input(args.output, [*([source] if source else []), *args.model.iterdir()])
    if args.stride is not None and args.max_length is not None and args.stride > args.max_length:
        raise ValueError(
            f"--stride {args.stride} is larger than --max-length {args.max_length}: tokens would be skipped"
        )

    if args.text is not None:
        texts, indices = args.text, list(range(len(args.text)))
    elif args.file is not None:
        texts, indices = [read_text(args.file)], [0]
    else:
        lines = read_text(args.lines).splitlines()
        indices = [i for i, line in enumerate(lines) if line.strip()]
        texts = [lines[i] for i in indices]
        if not texts:
            raise ValueError(f"--lines {args.lines}: no text in it (every line is blank)")

    import torch
    from transformers import AutoTokenizer

    from .. import HfEmbedModel
    from ..tokenization import encode_array

    model = HfEmbedModel.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    limit = model.config.max_position_embeddings
    max_length = args.max_length or limit
    if max_length > limit:
        raise ValueError(f"--max-length {max_length} is more than the model's max_position_embeddings ({limit})")
    if args.stride is not None and args.stride > max_length:
        raise ValueError(f"--stride {args.stride} is larger than --max-length {max_length}: tokens would be skipped")
    if args.file is not None:  # one text, perhaps a book: a large one takes the fast engine
        encoded = [encode_array(tokenizer, texts[0]).tolist()]
    else:  # no "longer than the maximum" warning: lengths are checked here
        encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    rows: list[tuple[int, int, list[int]]] = []  # (text index, window start, ids)
    for index, ids in zip(indices, encoded, strict=True):
        if not ids:
            raise ValueError(f"text {index} gives no tokens")
        if len(ids) <= max_length:
            rows.append((index, 0, ids))
        elif args.truncate:
            rows.append((index, 0, ids[:max_length]))
        elif args.stride is not None:
            rows.extend((index, s, ids[s : s + max_length]) for s in _windows(len(ids), max_length, args.stride))
        else:
            where = f"line {index + 1} of {args.lines}" if args.lines else f"text {index}"
            name = "max_position_embeddings" if max_length == limit else "--max-length"
            raise ValueError(
                f"{where} is {len(ids)} tokens, more than {name} ({max_length}); pass --truncate to keep the first "
                f"{max_length} or --stride N to embed it in windows of {max_length}"
            )

    width = max(len(ids) for _, _, ids in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)  # (R, T)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)  # (R, T)
    for r, (_, _, ids) in enumerate(rows):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        attention_mask[r, : len(ids)] = 1
    d = model.config.hidden_size
    shape = (len(rows), width, d) if args.pooling == "none" else (len(rows), d)
    embeddings = torch.zeros(shape, dtype=model.dtype)
    with torch.no_grad():
        for start in range(0, len(rows), args.batch_size):
            mask = attention_mask[start : start + args.batch_size]  # (b, T)
            t = int(mask.sum(1).max())  # the batch's longest row: pad no further
            mask = mask[:, :t]
            out = model(input_ids[start : start + args.batch_size, :t], attention_mask=mask).last_hidden_state
            out = out * mask.unsqueeze(-1).to(out.dtype)  # (b, t, D), pads zeroed
            if args.pooling == "none":
                embeddings[start : start + len(mask), :t] = out
            elif args.pooling == "mean":
                embeddings[start : start + len(mask)] = out.sum(1) / mask.sum(1, keepdim=True).to(out.dtype)
            else:
                last = mask.sum(1) - 1  # (b,) index of each row's last token
                embeddings[start : start + len(mask)] = out[torch.arange(len(mask)), last]
    arrays = {
        "embeddings": embeddings,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "text_index": torch.tensor([index for index, _, _ in rows]),
        "window_start": torch.tensor([s for _, s, _ in rows]),
    }
    suffix = args.output.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        write_file_atomically(args.output, lambda path: save_file(arrays, path))
    else:
        as_numpy = {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in arrays.items()}
        if suffix == ".npz":
            write_file_atomically(args.output, lambda path: _save_npz(path, as_numpy))
        else:
            write_file_atomically(args.output, lambda path: _save_npy(path, as_numpy["embeddings"]))
    n = len(texts)
    windows = f" in {len(rows)} rows" if len(rows) != n else ""
    if args.lines is not None and len(lines) > n:
        windows += f" ({len(lines) - n} blank line{'s' * (len(lines) - n > 1)} skipped)"
    kept = "" if suffix != ".npy" else " (embeddings only: use .npz or .safetensors to keep the ids)"
    print(
        f"{n} text{'s' * (n != 1)}{windows}: input_ids {tuple(input_ids.shape)} -> embeddings "
        f"{tuple(embeddings.shape)} {str(embeddings.dtype).removeprefix('torch.')}, pooling {args.pooling} -> "
        f"{args.output}{kept}"
    )
    return 0


def _save_npz(path: str, arrays: dict) -> None:
    import numpy as np

    with open(path, "wb") as f:  # a file object: np.savez would append .npz to the temporary's name
        np.savez(f, **arrays)


def _save_npy(path: str, array) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.save(f, array)


def add_inspect(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show a saved model's sizes, dtype, position scheme, tokenizer and nearest tokens",
        description="Print a saved model's configuration summary, parameter count and tokenizer, with a warning "
        "where the two disagree; with --token, the tokens whose embeddings are nearest to it by cosine similarity.",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder")
    p.add_argument("--token", help="a word or token to find the neighbours of (uses the folder's tokenizer)")
    p.add_argument("--top", type=int_at_least(1), default=10, help="how many neighbours (default: %(default)s)")
    p.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    check_model_folder(args.model)
    has_tokenizer = (args.model / "tokenizer_config.json").is_file()
    if args.token is not None and not has_tokenizer:
        raise FileNotFoundError(f"--token needs a tokenizer, and {args.model} has none (no tokenizer_config.json)")

    import torch
    import torch.nn.functional as F
    from transformers import AutoTokenizer

    from .. import HfEmbedModel
    from ..tokenization import vocab_size_of

    model = HfEmbedModel.from_pretrained(args.model)
    c = model.config
    head = f", head_dim {c.position_dim}" if c.position_embedding_type in ("rotary", "relative") else ""
    print(f"model:      {args.model}")
    real = c.real_vocab_size
    print(f"vocabulary: {real}" + (f" tokens, table padded to {c.vocab_size} rows" if real < c.vocab_size else ""))
    print(f"hidden:     {c.hidden_size}")
    scheme = c.position_embedding_type
    if scheme == "rotary":
        rope = c.rope_parameters
        scheme = f"rotary ({rope['rope_type']}, theta {rope['rope_theta']:g})"
    print(f"positions:  {scheme}, max {c.max_position_embeddings}{head}")
    if c.embedding_multiplier != 1.0:
        print(f"multiplier: {c.embedding_multiplier}")
    if c.embedding_layernorm:
        print(f"norm:       LayerNorm (eps {c.layer_norm_epsilon:g})")
    print(f"dtype:      {str(model.dtype).removeprefix('torch.')}")
    print(f"parameters: {model.num_parameters():,}")
    tokenizer = AutoTokenizer.from_pretrained(args.model) if has_tokenizer else None
    if tokenizer is None:
        print("tokenizer:  none saved")
    else:
        ids = vocab_size_of(tokenizer)
        special = ", ".join(
            f"{name} {getattr(tokenizer, name + '_token_id')}"
            for name in ("bos", "eos", "pad")
            if getattr(tokenizer, name + "_token_id", None) is not None
        )
        print(f"tokenizer:  {ids} ids, {special or 'no special tokens'}, model_max_length {tokenizer.model_max_length}")
        problems = []
        if ids > c.vocab_size:
            problems.append(
                f"the tokenizer's ids {c.vocab_size}..{ids - 1} have no row in the {c.vocab_size}-row table"
            )
        if tokenizer.model_max_length > c.max_position_embeddings:
            problems.append(
                f"the tokenizer's model_max_length {tokenizer.model_max_length} is more than the model's "
                f"{c.max_position_embeddings} positions: truncation=True would not cut long texts enough"
            )
        for name in ("bos", "eos", "pad"):
            token_id, config_id = getattr(tokenizer, f"{name}_token_id", None), getattr(c, f"{name}_token_id", None)
            if token_id is not None and config_id is not None and token_id != config_id:
                problems.append(f"{name}_token_id is {config_id} in config.json but {token_id} in the tokenizer")
        for problem in problems:
            print(f"warning:    {problem}")
    if args.token is None:
        return 0
    assert tokenizer is not None  # --token without a tokenizer was refused before anything loaded
    ids = tokenizer(args.token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"{args.token!r} is {len(ids)} tokens {pieces}; give a single token")
    table = model.get_input_embeddings().weight.detach()[:real].float()  # (V, D): no padding rows
    similarity = F.cosine_similarity(table, table[ids[0]].unsqueeze(0), dim=-1)  # (V,)
    top = torch.topk(similarity, min(args.top + 1, len(similarity)))
    print(f"nearest to {args.token!r} (id {ids[0]}) by cosine similarity:")
    for score, index in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        if index != ids[0]:
            print(f"  {score:+.3f}  {index:>6}  {tokenizer.decode([index])!r}")
    return 0


def add_resize(subparsers) -> None:
    p = subparsers.add_parser(
        "resize",
        help="write a copy of a model folder that takes a different number of positions",
        description="Load a saved model folder, give it --max-positions positions (resize_position_embeddings), "
        "and save it with its tokenizer (model_max_length updated) into a new folder. 'keep' keeps the first rows "
        "of a learned table (shrinking keeps the first N, growing appends rows initialized as at construction; "
        "'extend' is the same); 'interpolate' stretches the learned vectors linearly over the new length. Other "
        "schemes compute their positions: 'keep' moves the limit (a dynamic-NTK rotary model then scales past its "
        "original length).",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder")
    p.add_argument("--max-positions", type=int_at_least(1), required=True, help="the new max_position_embeddings")
    p.add_argument("--method", choices=("keep", "extend", "interpolate"), default="keep", help="default: %(default)s")
    p.add_argument("--output", type=Path, required=True, help="the new folder (not the model folder itself)")
    p.add_argument("--force", action="store_true", help="replace the model and tokenizer of a non-empty --output")
    p.set_defaults(func=_resize)


def _resize(args: argparse.Namespace) -> int:
    import json

    from ..atomic_write import check_output_is_not_an_input

    check_model_folder(args.model)  # a folder with config.json
    config_file = args.model / "config.json"
    check_output_is_not_an_input(args.output, [args.model])
    check_empty_output(args.output, args.force)
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    scheme = saved.get("position_embedding_type", "absolute")
    if args.method == "interpolate" and scheme != "absolute":  # the model would refuse it too, after loading
        raise ValueError(
            f"--method interpolate resamples a learned position table; {args.model} has position_embedding_type "
            f"{scheme!r}, which has none (use --method keep)"
        )

    from transformers import AutoTokenizer

    from .. import HfEmbedForCausalLM, HfEmbedModel

    # The class it was saved as, so that an untied LM head is kept
    cls = HfEmbedForCausalLM if "HfEmbedForCausalLM" in (saved.get("architectures") or []) else HfEmbedModel
    model = cls.from_pretrained(args.model)
    old = model.config.max_position_embeddings
    model.resize_position_embeddings(args.max_positions, method=args.method)
    parts = [model]
    if (args.model / "tokenizer_config.json").is_file() or (args.model / "tokenizer.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        tokenizer.model_max_length = args.max_positions
        parts.append(tokenizer)
    save_folder(args.output, *parts)
    copied = "tokenizer copied" if len(parts) == 2 else "no tokenizer in the model folder"
    print(f"{args.output}/: {scheme} positions {old} -> {args.max_positions} ({args.method}); {copied}")
    return 0


def add_push(subparsers) -> None:
    p = subparsers.add_parser(
        "push",
        help="upload a saved model folder (weights, code, tokenizer, model card) to the Hub",
        description="Load a saved hf-embed model folder and push it with its tokenizer and a generated model "
        "card. The token comes from --token, HF_TOKEN or `hf auth login`. A push identical to the repository's "
        "head makes no commit.",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder")
    p.add_argument("repo_id", help="the Hub repository, e.g. user/my-embeddings")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--token", help="a Hub token (default: HF_TOKEN or the saved login)")
    p.add_argument("--license", default="apache-2.0", help="license for the model card (default: %(default)s)")
    p.set_defaults(func=_push)


def _push(args: argparse.Namespace) -> int:
    check_model_folder(args.model)
    from huggingface_hub import get_token

    from ..hub import HOW_TO_GIVE_A_TOKEN, push

    if args.token is None and get_token() is None:  # before the model loads: fail at once
        raise PermissionError(f"no Hugging Face token to push {args.repo_id}: give one {HOW_TO_GIVE_A_TOKEN}")
    from transformers import AutoTokenizer

    from .. import HfEmbedModel

    model = HfEmbedModel.from_pretrained(args.model)
    tokenizer = None
    if (args.model / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    info = push(model, tokenizer, args.repo_id, token=args.token, private=args.private or None, license=args.license)
    print(f"pushed {args.model} to {args.repo_id}: commit {info.oid}")
    return 0
