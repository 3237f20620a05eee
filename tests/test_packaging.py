"""The wheel ships the presets, the typing marker and the model files."""

from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import MODEL_FILES

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path):
    wheel_builder = pytest.importorskip("hatchling.builders.wheel")
    builder = wheel_builder.WheelBuilder(str(ROOT))
    (wheel,) = list(builder.build(directory=str(tmp_path), versions=["standard"]))
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {f"hf_embed/presets/{p.name}" for p in (ROOT / "src" / "hf_embed" / "presets").glob("*.json")}
    assert presets and presets <= names
    for required in ("py.typed", *MODEL_FILES, "cli/__init__.py", "__init__.py"):
        assert f"hf_embed/{required}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hf-embed = hf_embed.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_model_files_import_only_torch_transformers_and_each_other():
    """`save_pretrained` copies these files for `trust_remote_code`, where only a flat folder exists."""
    allowed = {"torch", "transformers"} | set(sys.stdlib_module_names)
    siblings = {name.removesuffix(".py") for name in MODEL_FILES}
    for name in MODEL_FILES:
        tree = ast.parse((ROOT / "src" / "hf_embed" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:  # `from .configuration_hf_embed import ...`: a sibling, flattened alongside
                    assert node.module in siblings, f"{name}: from .{node.module}"
                    continue
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] in allowed, f"{name} imports {module}"


def test_transformers_remote_code_loader_finds_every_import_of_the_saved_files(tmp_path):
    """transformers checks the imports of each remote-code file (outside try blocks) before loading it: one it cannot
    import (a Windows-only `msvcrt` behind `if sys.platform == "win32"`) fails every load. Checked on the saved
    folder, with transformers' own check."""
    from transformers.dynamic_module_utils import check_imports

    from hf_embed import HfEmbedConfig, HfEmbedModel

    HfEmbedModel(HfEmbedConfig.from_preset("tiny")).save_pretrained(tmp_path)
    saved = sorted(p.name for p in tmp_path.glob("*.py"))
    assert saved == sorted(MODEL_FILES)
    for name in saved:
        check_imports(tmp_path / name)  # raises ImportError naming what is missing
