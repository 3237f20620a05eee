"""Commands on model folders: `init`, `embed`, `inspect`, `resize`, `push`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    POSITION_EMBEDDING_TYPES,
    check_files,
    check_model_folder,
    check_output_folder,
    int_at_least,
    load_tokenizer,
    path_with_suffix,
    preset_names,
    read_text,
    save_folder,
)


def add_init(subparsers) -> None:
    p = subparsers.add_parser(
        "init",
        help="create a model folder (model + tokenizer) from a preset or a GPT-2 checkpoint",
        description="Build an HfEmbedModel from a preset (randomly initialized) or from a transformers GPT-2 "
        "checkpoint's tables, and save it with its tokenizer into a folder that AutoModel/AutoTokenizer load.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", default="gpt2", choices=preset_names(), help="preset name (default: %(default)s)")
    source.add_argument("--from-gpt2", help="a GPT-2 folder or Hub id whose wte/wpe to import")
    p.add_argument("--position-embedding-type", choices=POSITION_EMBEDDING_TYPES, help="the position scheme")
    p.add_argument("--tokenizer", default="gpt2", help="'gpt2' (built in) or a saved tokenizer folder")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the initial tables (default: %(default)s)")
    p.add_argument("--output", type=Path, required=True, help="folder to create")
    p.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
    from ..atomic_write import check_output_is_not_an_input

    check_output_folder(args.output)
    if args.from_gpt2:
        check_output_is_not_an_input(args.output, [args.from_gpt2])

    import torch

    from .. import HfEmbedConfig, HfEmbedModel
    from ..tokenization import check_vocab_compatible

    overrides = {}
    if args.position_embedding_type:
        overrides["position_embedding_type"] = args.position_embedding_type
    torch.manual_seed(args.seed)
    if args.from_gpt2:
        model = HfEmbedModel.from_gpt2(args.from_gpt2, **overrides)
    else:
        model = HfEmbedModel(HfEmbedConfig.from_preset(args.preset, **overrides))
    tokenizer = load_tokenizer(args.tokenizer)
    check_vocab_compatible(model.config, tokenizer)
    save_folder(args.output, model, tokenizer)
    c = model.config
    print(
        f"{args.output}/: {c.vocab_size} x {c.hidden_size} tokens, {c.position_embedding_type} positions up to "
        f"{c.max_position_embeddings}, {model.num_parameters():,} parameters"
    )
    return 0


def add_embed(subparsers) -> None:
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
    p.add_argument(
        "--output",
        type=path_with_suffix(".safetensors", ".npy"),
        required=True,
        help="embeddings.safetensors or embeddings.npy",
    )
    p.add_argument("--truncate", action="store_true", help="cut the ids to max_position_embeddings")
    p.set_defaults(func=_embed)


def _embed(args: argparse.Namespace) -> int:
    from ..atomic_write import check_output_is_not_an_input, write_file_atomically

    check_model_folder(args.model)
    if args.file is not None:
        check_files([args.file])
    # The output may be neither the text nor a file of the model folder (its weights, say).
    check_output_is_not_an_input(args.output, [*([args.file] if args.file else []), *args.model.iterdir()])
    text = args.text if args.text is not None else read_text(args.file)

    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from .. import HfEmbedModel
    from ..tokenization import encode_array

    model = HfEmbedModel.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    ids = encode_array(tokenizer, text)  # a large file takes the fast engine
    limit = model.config.max_position_embeddings
    if len(ids) > limit:
        if not args.truncate:
            raise ValueError(
                f"the text is {len(ids)} tokens, more than max_position_embeddings ({limit}); "
                "pass --truncate to keep the first ones"
            )
        ids = ids[:limit]
    input_ids = torch.from_numpy(ids.astype(np.int64))[None]  # (1, T)
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


def add_inspect(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show a saved model's sizes, dtype, position scheme and nearest tokens",
        description="Print a saved model's configuration summary and parameter count; with --token, the tokens "
        "whose embeddings are nearest to it by cosine similarity.",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder")
    p.add_argument("--token", help="a word or token to find the neighbours of (uses the folder's tokenizer)")
    p.add_argument("--top", type=int_at_least(1), default=10, help="how many neighbours (default: %(default)s)")
    p.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    check_model_folder(args.model)

    import torch
    import torch.nn.functional as F
    from transformers import AutoTokenizer

    from .. import HfEmbedModel

    model = HfEmbedModel.from_pretrained(args.model)
    c = model.config
    print(f"model:      {args.model}")
    real = c.real_vocab_size
    print(f"vocabulary: {real}" + (f" tokens, table padded to {c.vocab_size} rows" if real < c.vocab_size else ""))
    print(f"hidden:     {c.hidden_size}")
    scheme = c.position_embedding_type
    if scheme == "rotary":
        rope = c.rope_parameters
        scheme = f"rotary ({rope['rope_type']}, theta {rope['rope_theta']:g})"
    print(f"positions:  {scheme}, max {c.max_position_embeddings}")
    if c.embedding_multiplier != 1.0:
        print(f"multiplier: {c.embedding_multiplier}")
    if c.embedding_layernorm:
        print(f"norm:       LayerNorm (eps {c.layer_norm_epsilon:g})")
    print(f"dtype:      {str(model.dtype).removeprefix('torch.')}")
    print(f"parameters: {model.num_parameters():,}")
    if args.token is None:
        return 0
    tokenizer = AutoTokenizer.from_pretrained(args.model)
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
    p.set_defaults(func=_resize)


def _resize(args: argparse.Namespace) -> int:
    import json

    from ..atomic_write import check_output_is_not_an_input

    check_model_folder(args.model)
    config_file = args.model / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{args.model}: no config.json, so it is not a saved model folder")
    check_output_folder(args.output)
    check_output_is_not_an_input(args.output, [args.model])
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
        "card. The token comes from --token, HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("model", type=Path, help="a saved hf-embed model folder")
    p.add_argument("repo_id", help="the Hub repository, e.g. user/my-embeddings")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--token", help="a Hub token (default: HF_TOKEN or the saved login)")
    p.add_argument("--license", default="apache-2.0", help="license for the model card (default: %(default)s)")
    p.set_defaults(func=_push)


def _push(args: argparse.Namespace) -> int:
    check_model_folder(args.model)

    from transformers import AutoTokenizer

    from .. import HfEmbedModel
    from ..hub import push

    model = HfEmbedModel.from_pretrained(args.model)
    tokenizer = None
    if (args.model / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    info = push(model, tokenizer, args.repo_id, token=args.token, private=args.private or None, license=args.license)
    print(f"pushed {args.model} to {args.repo_id}: commit {info.oid}")
    return 0
