#!/usr/bin/env python
"""Run transformers' own common tests (`ModelTesterMixin`, `ConfigTester`) against hf-embed.

transformers does not ship its test suite in the wheel, so this script takes it, at run time, from the
source distribution of the *installed* transformers version:

1. find `transformers-<version>.tar.gz` in a cache folder, or fetch it from the package index with
   `pip download --no-deps --no-binary :all: transformers==<version>` (nothing of it is committed);
2. extract `tests/test_modeling_common.py`, `tests/test_configuration_common.py` and, following their
   relative imports, the other `tests/` modules they need. The sdist ships only the top level of
   `tests/`: the sub-package modules they import (export tests, generation tests, the common config
   kwargs) are missing from it and are replaced by small stand-ins written here (`STAND_INS` says what
   each provides and what is therefore not tested);
3. define a tiny tester in the style of transformers' model testers (vocabulary 99, hidden size 32,
   batch 13, sequence 7) and, for each position scheme, a `unittest.TestCase` that mixes in
   `ModelTesterMixin` for `HfEmbedModel` and `HfEmbedForCausalLM`, plus one test per `ConfigTester` check;
4. run them with pytest and print passed / failed / skipped per scheme, every skip reason, and one line
   per failure.

Tests that do not apply to a model without attention layers skip themselves, through transformers' own
switch for attention-free models (`has_attentions = False`) or their `require_*` decorators
(accelerators, flash-attention, DeepSpeed). The few that need hf-embed's word for it are in `SKIPS`,
each with its reason. Nothing is skipped silently: the summary lists every skip reason.

Usage (run it with python: it starts its own pytest session, with settings of its own):
    python scripts/transformers_common_tests.py [--cache DIR] [--sdist FILE] [--schemes absolute,rotary]
                                                 [--json FILE] [-- PYTEST_ARGS...]

The cache folder is `--cache`, else `$HF_EMBED_TRANSFORMERS_SDIST_CACHE`, else
`$XDG_CACHE_HOME/hf-embed/transformers-sdist` (XDG_CACHE_HOME defaults to ~/.cache).
Exit status: pytest's (0 when nothing failed).
"""

from __future__ import annotations

import argparse
import ast
import collections
import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
from pathlib import Path

CACHE_ENV = "HF_EMBED_TRANSFORMERS_SDIST_CACHE"  # folder for sdists and the test modules extracted from them
PREPARED_ENV = "HF_EMBED_TRANSFORMERS_TESTS_ROOT"  # set by `main` for the pytest session it starts
SCHEMES_ENV = "HF_EMBED_COMMON_TESTS_SCHEMES"  # likewise: the --schemes choice

# ======================================================================================================
# 1-2. transformers' test modules, from its sdist
# ======================================================================================================

ROOT_MODULES = ("tests/test_modeling_common.py", "tests/test_configuration_common.py")
PACKAGE = "transformers_tests"  # the extracted `tests/` is imported under this name: no clash with ours

# Modules the root files import that the sdist does not contain, each replaced by a stand-in defining
# the names imported from it. A stand-in sets HF_EMBED_STAND_IN, so the tests know it is one.
STAND_INS: dict[str, str] = {
    # `ModelTesterMixin` subclasses `ExportTesterMixin`, whose tests export each model (torch.export,
    # ONNX, ExecuTorch, ...). Those tests are not run here: the stand-in is an empty base class.
    "tests/exporters/test_export.py": '''
HF_EMBED_STAND_IN = True


class ExportTesterMixin:
    """Stand-in written by hf-embed's harness: the export tests are not in transformers' sdist."""
''',
    # Imported for `test_generation_tester_mixin_inheritance`, which checks that a model that can
    # `generate()` has a tester running the generation tests. Those tests are not in the sdist, so they
    # are not run here; that check is skipped with this reason once a class can generate (`conditional_skips`).
    "tests/generation/test_utils.py": '''
HF_EMBED_STAND_IN = True


class GenerationTesterMixin:
    """Stand-in written by hf-embed's harness: the generation tests are not in transformers' sdist."""
''',
    # `ConfigTester.check_config_arguments_init` builds a config from these kwargs and checks that each
    # was set. Like upstream's dict, this gives every field of the base `PreTrainedConfig` a non-default
    # value; `_check_config_common_kwargs` fails the run when the installed version's fields differ.
    "tests/utils/test_configuration_utils.py": """
HF_EMBED_STAND_IN = True

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}
""",
}


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hf-embed" / "transformers-sdist"


def find_or_download_sdist(version: str, cache: Path) -> Path:
    """`transformers-<version>.tar.gz` from `cache`, fetched from the package index when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"transformers-{version}.tar.gz"
    if sdist.is_file():
        return sdist
    print(f"downloading the transformers {version} source distribution into {cache} ...", flush=True)
    with tempfile.TemporaryDirectory(dir=cache) as staging:  # an interrupted download leaves nothing behind
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        result = subprocess.run(
            [*command, "--dest", staging, f"transformers=={version}"], capture_output=True, text=True
        )
        found = sorted(Path(staging).glob("transformers-*.tar.gz"))
        if result.returncode != 0 or not found:
            raise SystemExit(f"pip download of transformers=={version} failed:\n{result.stdout}{result.stderr}")
        os.replace(found[0], sdist)
    return sdist


def _relative_imports(source: str, path: str) -> list[tuple[str, tuple[str, ...]]]:
    """The `from .x import a, b` statements of the file at `path`: (module path, imported names) pairs."""
    package = path.split("/")[:-1]  # "tests/a/b.py" -> ["tests", "a"]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            names = tuple(alias.name for alias in node.names)
            if node.module:  # from .a.b import x -> tests/a/b
                found.append(("/".join(base + node.module.split(".")), names))
            else:  # from . import x -> x is a module
                found.extend(("/".join([*base, name]), (name,)) for name in names)
    return found


def _collect_test_modules(sdist: Path) -> tuple[dict[str, str], list[str]]:
    """{path under the sdist root: text} for the root modules and everything they import, and the stand-ins used."""
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile() and "/" in m.name}

        def read(path: str) -> str | None:
            return tar.extractfile(members[path]).read().decode("utf-8") if path in members else None

        files: dict[str, str] = {}
        stand_ins = []
        pending = list(ROOT_MODULES)
        while pending:
            path = pending.pop()
            if path in files:
                continue
            text = read(path)
            if text is None:  # not shipped: the stand-in, whose imports need no following
                if path not in STAND_INS:
                    raise SystemExit(f"{sdist.name}: {path} is missing and this harness has no stand-in for it")
                files[path] = STAND_INS[path]
                stand_ins.append(path)
                continue
            files[path] = text
            for module, names in _relative_imports(text, path):
                candidates = (f"{module}.py", f"{module}/__init__.py")
                found = [c for c in candidates if c in members or c in STAND_INS]
                if not found:
                    raise SystemExit(
                        f"{path} imports {names} from {module}, which is neither in {sdist.name} nor a stand-in"
                    )
                pending.append(found[0])
    return files, sorted(stand_ins)


def extract_tests(sdist: Path, cache: Path) -> Path:
    """Extract the test modules of `sdist` into `cache` (once per sdist); return the folder for sys.path."""
    stat = sdist.stat()
    key = hashlib.sha256(f"{sdist.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache / f"{sdist.name.removesuffix('.tar.gz')}-tests-{key}"
    if (target / "manifest.json").is_file():  # written last: its presence means the extraction finished
        return target

    files, stand_ins = _collect_test_modules(sdist)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the extracted tests are no secret
        for path, text in files.items():
            out = staging / PACKAGE / path.split("/", 1)[1]  # tests/x.py -> transformers_tests/x.py
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        for folder in [staging / PACKAGE, *(p for p in (staging / PACKAGE).rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()  # the sdist has no tests/__init__.py; relative imports need one
        (staging / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # see `main`
        manifest = {"sdist": str(sdist), "files": sorted(files), "stand_ins": stand_ins}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)  # an unfinished earlier extraction
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def prepare(cache: Path | None = None, sdist: Path | None = None) -> Path:
    """The folder holding the importable `transformers_tests` package for the installed transformers."""
    import transformers

    cache = cache or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return extract_tests(sdist or find_or_download_sdist(transformers.__version__, cache), cache)


# ======================================================================================================
# 4. Running and reporting (`main`); the tests themselves (3.) follow and are collected from this file
# ======================================================================================================


class _Report:
    """pytest plugin: counts per scheme, every skip reason, one line per failure, and optionally JSON.

    `self.subTest(...)` blocks inside a test (many mixin tests open one per model class) are counted in
    columns of their own, so that "passed" counts tests.
    """

    COLUMNS = ("passed", "failed", "error", "skipped", "subtests passed", "subtests failed", "subtests skipped")

    def __init__(self, json_path: str | None, notes: list[str]):
        self.json_path = json_path
        self.notes = notes
        self.counts = collections.defaultdict(collections.Counter)  # scheme -> column -> n
        self.skips = collections.defaultdict(lambda: collections.defaultdict(set))  # reason -> scheme -> {test}
        self.failures = []  # (scheme, test, one-line error)

    def pytest_runtest_logreport(self, report):
        parts = report.nodeid.split("::")
        cls, test = (parts[-2] if len(parts) > 1 else ""), parts[-1]
        scheme = cls.removeprefix("HfEmbedModelTest_") if cls.startswith("HfEmbedModelTest_") else "(other)"
        context = getattr(report, "context", None)  # only a subtest's report has one
        if context is not None:
            if report.when == "call":
                self._record(scheme, f"{test} [{context.msg or context.kwargs}]", report, "subtests ")
        elif report.when == "call" or (report.when == "setup" and not report.passed):
            self._record(scheme, test, report, "")
        elif report.when == "teardown" and report.failed:
            self.counts[scheme]["error"] += 1
            self.failures.append((scheme, test, "teardown: " + self._one_line(report)))

    def _record(self, scheme: str, test: str, report, column_prefix: str) -> None:
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skips[reason.removeprefix("Skipped: ")][scheme].add(test)
            outcome = "skipped"
        elif report.failed:
            self.failures.append((scheme, test, self._one_line(report)))
            outcome = "failed" if report.when == "call" else "error"
        else:
            outcome = "passed"
        self.counts[scheme][column_prefix + outcome] += 1

    def pytest_collectreport(self, report):
        if report.failed:
            self.counts["(collection)"]["error"] += 1
            self.failures.append(("(collection)", report.nodeid, self._one_line(report)))

    @staticmethod
    def _one_line(report) -> str:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
        return " ".join(text.split())[:300]

    def pytest_terminal_summary(self, terminalreporter):
        write = terminalreporter.write_line
        write("")
        write("=" * 34 + " hf-embed x transformers common tests " + "=" * 34)
        widths = [max(9, len(column) + 2) for column in self.COLUMNS]
        write(f"{'scheme':<12}" + "".join(f"{c:>{w}}" for c, w in zip(self.COLUMNS, widths, strict=True)))
        for scheme, counts in sorted(self.counts.items()):
            write(f"{scheme:<12}" + "".join(f"{counts[c]:>{w}}" for c, w in zip(self.COLUMNS, widths, strict=True)))
        write("")
        write("skip reasons -- [schemes] tests:")
        for reason, by_scheme in sorted(self.skips.items(), key=lambda item: item[0].lower()):
            tests = sorted(set().union(*by_scheme.values()))
            shown = ", ".join(tests[:3]) + (f", ... ({len(tests)} tests)" if len(tests) > 3 else "")
            write(f"  - {reason} -- [{','.join(sorted(by_scheme))}] {shown}")
        for note in self.notes:
            write(f"note: {note}")
        if self.failures:
            write("")
            write("failures:")
            for scheme, test, message in self.failures:
                write(f"  - [{scheme}] {test}: {message}")
        if self.json_path:
            data = {
                "counts": {scheme: dict(counts) for scheme, counts in self.counts.items()},
                "skips": {r: {s: sorted(t) for s, t in by_scheme.items()} for r, by_scheme in self.skips.items()},
                "failures": [{"scheme": s, "test": t, "error": m} for s, t, m in self.failures],
                "notes": self.notes,
            }
            Path(self.json_path).write_text(json.dumps(data, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help=f"cache folder (default: ${CACHE_ENV} or ~/.cache/hf-embed/...)")
    parser.add_argument("--sdist", type=Path, help="a transformers sdist to use instead of the cached/downloaded one")
    parser.add_argument("--schemes", help="comma-separated position schemes to test (default: all)")
    parser.add_argument("--json", help="also write the counts, skip reasons and failures to this JSON file")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --: e.g. -- -k resize -x")
    args = parser.parse_args(argv)

    import pytest
    import transformers

    start = time.perf_counter()
    tests_root = prepare(args.cache, args.sdist)
    manifest = json.loads((tests_root / "manifest.json").read_text(encoding="utf-8"))
    print(f"transformers {transformers.__version__}: tests from {manifest['sdist']} in {tests_root}", flush=True)
    notes = [f"{path} is not in the sdist: a stand-in replaced it (see STAND_INS)" for path in manifest["stand_ins"]]

    os.environ[PREPARED_ENV] = str(tests_root)
    if args.schemes:
        os.environ[SCHEMES_ENV] = args.schemes
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # none of these tests needs the Hub: fail fast if one tries

    # An empty ini of our own: the project's pytest settings (--strict-markers, testpaths) are not meant
    # for this session, and transformers registers its markers (flash_attn_test, ...) in a conftest.py
    # that is not extracted.
    pytest_args = [
        __file__,
        "-c", str(tests_root / "pytest.ini"),
        "--rootdir", str(Path(__file__).resolve().parent),
        "-p", "no:cacheprovider",
        "-W", "ignore::pytest.PytestUnknownMarkWarning",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
        "-q", "-rN", "--tb=short",
        *args.pytest_args,
    ]  # fmt: skip
    status = pytest.main(pytest_args, plugins=[_Report(args.json, notes)])
    print(f"wall clock: {time.perf_counter() - start:.0f} s")
    return int(status)


# ======================================================================================================
# 3. The tests, defined when pytest imports this file
# ======================================================================================================

if __name__ != "__main__":
    from hf_embed import HfEmbedConfig, HfEmbedForCausalLM, HfEmbedModel
    from hf_embed.configuration_hf_embed import POSITION_EMBEDDING_TYPES

    sys.path.insert(0, os.environ.get(PREPARED_ENV) or str(prepare()))
    import transformers
    from transformers.models.auto import modeling_auto
    from transformers_tests.generation import test_utils as generation_test_utils
    from transformers_tests.test_configuration_common import ConfigTester
    from transformers_tests.test_modeling_common import ModelTesterMixin, ids_tensor, random_attention_mask
    from transformers_tests.utils import test_configuration_utils

    # The mixin tells a class's role (base model, causal LM, ...) from transformers' static name tables:
    # it builds `labels` only for classes named in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, leaves base models
    # out of the training tests, and so on. `AutoModel.register` fills only the lazy auto mappings, so
    # enter hf-embed's model type in the static tables too, as for a built-in model (this process only).
    modeling_auto.MODEL_MAPPING_NAMES.setdefault(HfEmbedConfig.model_type, HfEmbedModel.__name__)
    modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.setdefault(HfEmbedConfig.model_type, HfEmbedForCausalLM.__name__)

    def _check_config_common_kwargs() -> None:
        """The stand-in `config_common_kwargs` must give every base config field a non-default value."""
        if not getattr(test_configuration_utils, "HF_EMBED_STAND_IN", False):
            return
        base = transformers.PreTrainedConfig()
        fields = {f.name for f in dataclasses.fields(base)} - {"transformers_version", "is_encoder_decoder"}
        kwargs = test_configuration_utils.config_common_kwargs
        missing = sorted(fields - set(kwargs))
        defaults = sorted(name for name, value in kwargs.items() if getattr(base, name) == value)
        if missing or defaults:
            raise RuntimeError(
                f"update STAND_INS['tests/utils/test_configuration_utils.py'] for transformers "
                f"{transformers.__version__}: fields missing {missing}, values equal to the default {defaults}"
            )

    _check_config_common_kwargs()

    # --------------------------------------------------------------------------------------------------
    # Skips that need hf-embed's word: test name -> {scheme, or "*" for all schemes: reason}. Every other
    # test runs, or skips itself (has_attentions=False, require_* decorators) with its own reason. Each
    # name is checked against the mixin, so a test renamed upstream cannot hide behind a stale entry.
    # --------------------------------------------------------------------------------------------------
    SKIPS: dict[str, dict[str, str]] = {
        # The test resizes `get_position_embeddings().weight`, a table of one row per position, and
        # checks the row count. Only absolute and sinusoidal have such a table: rotary and none have no
        # table, and the relative table has one row per clipped distance (2 * max_relative_distance + 1)
        # whatever the length limit. For those, `resize_position_embeddings` only moves the limit.
        "test_resize_position_vector_embeddings": {
            "rotary": "rotary has no position table to resize (cos/sin are computed from the positions)",
            "relative": "the relative table has a row per clipped distance, not per position: its size does "
            "not follow max_position_embeddings",
            "none": "no position embeddings, so no table to resize",
        },
        # The RoPE-scaling test runs the model on 1.5 x max_position_embeddings tokens, which a Llama allows;
        # hf-embed refuses a sequence past its limit in every scheme (a ValueError naming it). The scaled
        # frequencies are checked against LlamaRotaryEmbedding for every rope_type instead
        # (tests/test_positions.py::test_rotary_equals_llama_for_every_rope_type).
        **{
            f"test_model_rope_scaling_from_config_{i}_{kind}": {
                "rotary": "runs past max_position_embeddings, which hf-embed refuses; the scaled (cos, sin) are "
                "compared with LlamaRotaryEmbedding's in tests/test_positions.py"
            }
            for i, kind in enumerate(("linear", "dynamic", "yarn"))
        },
    }

    def conditional_skips(test_case) -> dict[str, str]:
        """Skips that depend on what the models can do, which changes as hf-embed grows: name -> reason."""
        skips = {}
        if test_case.all_generative_model_classes and getattr(generation_test_utils, "HF_EMBED_STAND_IN", False):
            skips["test_generation_tester_mixin_inheritance"] = (
                "GenerationTesterMixin (tests/generation/test_utils.py) is not in transformers' sdist, so "
                "transformers' generate() tests cannot run here"
            )
        return skips

    def skip_reason(test_case) -> str | None:
        by_scheme = SKIPS.get(test_case._testMethodName, {})
        reason = by_scheme.get(test_case.position_embedding_type) or by_scheme.get("*")
        return reason or conditional_skips(test_case).get(test_case._testMethodName)

    class HfEmbedModelTester:
        """A tiny config and inputs, in the style of transformers' `GPT2ModelTester`."""

        def __init__(
            self,
            parent,
            position_embedding_type="absolute",
            batch_size=13,
            seq_length=7,
            is_training=True,
            use_input_mask=True,
            use_labels=True,
            vocab_size=99,
            hidden_size=32,
            head_dim=8,  # the width of the rotary cos/sin and the relative table, as for 4 attention heads
            max_position_embeddings=512,
            max_relative_distance=4,  # less than seq_length, so that distances are clipped
            type_vocab_size=16,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ):
            self.parent = parent
            self.position_embedding_type = position_embedding_type
            self.batch_size = batch_size
            self.seq_length = seq_length
            self.is_training = is_training
            self.use_input_mask = use_input_mask
            self.use_labels = use_labels
            # GPT-2-style token types, tested once the model's forward takes them
            self.use_token_type_ids = "token_type_ids" in inspect.signature(HfEmbedModel.forward).parameters
            self.type_vocab_size = type_vocab_size
            self.vocab_size = vocab_size
            self.hidden_size = hidden_size
            self.head_dim = head_dim
            self.max_position_embeddings = max_position_embeddings
            self.max_relative_distance = max_relative_distance
            self.pad_token_id = pad_token_id
            self.bos_token_id = bos_token_id
            self.eos_token_id = eos_token_id
            # An embedding stage has no transformer blocks: its hidden states are (embedding output,) alone.
            self.num_hidden_layers = 0

        def get_config(self) -> HfEmbedConfig:
            return HfEmbedConfig(
                vocab_size=self.vocab_size,
                hidden_size=self.hidden_size,
                head_dim=self.head_dim,
                max_position_embeddings=self.max_position_embeddings,
                position_embedding_type=self.position_embedding_type,
                max_relative_distance=self.max_relative_distance,
                pad_token_id=self.pad_token_id,
                bos_token_id=self.bos_token_id,
                eos_token_id=self.eos_token_id,
            )

        def prepare_config_and_inputs(self):
            shape = [self.batch_size, self.seq_length]
            input_ids = ids_tensor(shape, self.vocab_size)
            input_mask = random_attention_mask(shape) if self.use_input_mask else None
            token_type_ids = ids_tensor(shape, self.type_vocab_size) if self.use_token_type_ids else None
            labels = ids_tensor(shape, self.vocab_size) if self.use_labels else None
            return self.get_config(), input_ids, input_mask, token_type_ids, labels

        def prepare_config_and_inputs_for_common(self):
            config, input_ids, input_mask, token_type_ids, _labels = self.prepare_config_and_inputs()
            inputs_dict = {"input_ids": input_ids}
            if input_mask is not None:
                inputs_dict["attention_mask"] = input_mask
            if token_type_ids is not None:
                inputs_dict["token_type_ids"] = token_type_ids
            return config, inputs_dict

    class _HfEmbedCommonTests(ModelTesterMixin):
        """The mixin's tests plus one test per ConfigTester check; made concrete per scheme below."""

        position_embedding_type = "absolute"
        all_model_classes = (HfEmbedModel, HfEmbedForCausalLM)
        has_attentions = False  # transformers' own switch for attention-free models (ResNet, Mamba, ...)
        test_resize_embeddings = True
        test_resize_position_embeddings = True  # hf-embed implements resize_position_embeddings: test it
        # `test_can_init_all_missing_weights` skips models "added before 2023", which it tells from a copyright
        # year atop the config file; hf-embed's file has none and the model is new, so opt in.
        test_can_init_all_missing_weights_before_2023 = True

        def setUp(self):
            self.model_tester = HfEmbedModelTester(self, position_embedding_type=self.position_embedding_type)
            self.config_tester = ConfigTester(
                self,
                config_class=HfEmbedConfig,
                # instead of the default hidden_size, num_attention_heads, num_hidden_layers: an embedding
                # stage has neither heads nor layers
                common_properties=["hidden_size", "max_position_embeddings"],
                hidden_size=37,  # odd on purpose, as in transformers' testers
                head_dim=16 if self.position_embedding_type == "rotary" else None,  # rotary needs an even width
                position_embedding_type=self.position_embedding_type,
            )
            reason = skip_reason(self)
            if reason is not None:
                self.skipTest(reason)

    def _config_test(check: str):
        def test(self):
            getattr(self.config_tester, check)()

        test.__name__ = "test_config_" + check.removeprefix("create_and_test_config_").removeprefix("check_config_")
        test.__doc__ = f"ConfigTester.{check}"
        return test

    # One test per ConfigTester check (the checks `ConfigTester.run_common_tests` runs), each counted.
    for _check in dir(ConfigTester):
        if _check.startswith(("create_and_test_config", "check_config")):
            _test = _config_test(_check)
            if hasattr(ModelTesterMixin, _test.__name__):  # never shadow a mixin test
                raise RuntimeError(f"ConfigTester.{_check} would replace ModelTesterMixin.{_test.__name__}")
            setattr(_HfEmbedCommonTests, _test.__name__, _test)

    for _name in SKIPS:
        if not hasattr(ModelTesterMixin, _name):
            raise RuntimeError(f"SKIPS names {_name!r}, which is not a ModelTesterMixin test in this version")

    # One TestCase per position scheme: HfEmbedModelTest_absolute, HfEmbedModelTest_sinusoidal, ...
    _schemes = os.environ.get(SCHEMES_ENV, ",".join(POSITION_EMBEDDING_TYPES)).split(",")
    for _scheme in _schemes:
        if _scheme not in POSITION_EMBEDDING_TYPES:
            raise ValueError(f"unknown position scheme {_scheme!r}; known: {', '.join(POSITION_EMBEDDING_TYPES)}")
        _name = f"HfEmbedModelTest_{_scheme}"
        globals()[_name] = type(_name, (_HfEmbedCommonTests, unittest.TestCase), {"position_embedding_type": _scheme})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
