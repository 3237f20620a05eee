"""arguments: the one integer check (its messages naming the value and the limit) and the local-path rule."""

from __future__ import annotations

import sys

import pytest

from hf_embed.arguments import check_positive_int


@pytest.mark.parametrize("value", [1, 7, 2**40])
def test_integers_in_range_pass_through(value):
    assert check_positive_int("n", value) == value


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (0, {}, "`n` must be an integer >= 1, got 0"),
        (True, {}, "`n` must be an integer >= 1, got True"),  # a bool is not a count
        (2.0, {}, "`n` must be an integer >= 1, got 2.0"),
        ("3", {}, "`n` must be an integer >= 1, got '3'"),
        (-1, {"minimum": 0}, "`n` must be an integer >= 0, got -1"),
        (2, {"minimum": 0, "below": 2}, "`n` must be an integer in 0..1, got 2"),
        (100, {"minimum": 258, "why": "256 bytes + 2"}, "`n` must be an integer >= 258 (256 bytes + 2), got 100"),
    ],
)
def test_the_message_names_the_value_and_the_limit(value, options, message):
    with pytest.raises(ValueError) as error:
        check_positive_int("n", value, **options)
    assert str(error.value) == message


@pytest.mark.slow
def test_it_needs_no_torch():
    """Token files and tokenization check their integers with it and must not load torch (start-up)."""
    import subprocess

    code = "import sys, hf_embed.tokenize_corpus; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_one_rule_tells_a_local_path_from_a_hub_id(tmp_path, monkeypatch):
    """The rule loading and the command line share (`loading.local_folder`, `--tokenizer`, `--from-gpt2`)."""
    from hf_embed.arguments import looks_local

    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ("gpt2", "org/name", "my-tokenizr", "openai-community/gpt2"):
        assert not looks_local(name), name
    for name in ("runs", "./m", "/abs/m", "~/m", "a/b/c", "tok/", "runs/tok", "my tok", "a\\b", tmp_path / "x"):
        assert looks_local(name), name
