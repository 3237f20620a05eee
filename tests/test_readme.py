"""The README's first screen: its Python example runs, and it names the install, main-job and test commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch):
    """Every Python block of the README runs, but the one that needs a token file of your own."""
    text = README.read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "tokens.bin" not in b]
    assert len(blocks) >= 2, "the README's Python examples are missing"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})
    assert (tmp_path / "my-embeddings" / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("page", ["performance.md"])
def test_docs_examples_run(tmp_path, monkeypatch, page):
    """The Python blocks of the pages in docs/ run as the README's do."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.S)
    assert blocks, f"docs/{page} has no Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), {"__name__": "docs_example"})


def test_docs_links_resolve():
    """Every relative link of the README and docs/ names a file that exists."""
    for page in [README, *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_readme_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ['pip install -e ".[dev]"', "hf-embed demo", "pytest"]


def test_guarantees_name_real_tests():
    """Every test the README's Guarantees table cites exists."""
    section = README.read_text(encoding="utf-8").split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    cited = 0
    for row in section.splitlines():
        current = None
        for file_name, test_name in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`?", row):
            if file_name:
                current = README.parent / file_name
                assert current.is_file(), file_name
            if test_name:
                assert current is not None and f"def {test_name}(" in current.read_text(), test_name
                cited += 1
    assert cited >= 15
