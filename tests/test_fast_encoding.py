"""The exact engines (`fast_encoding.Encoder`): fastokens against tiktoken and `tokenizers` on arbitrary text, safe
cuts, the fallbacks (a mismatch, a vocabulary tiktoken cannot express, a thread pool too large)."""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from helpers import ids_of, make_text, read_tokens, write_text
from hf_embed import fast_encoding
from hf_embed.fast_encoding import Encoder, EngineMismatch, split_text, tiktoken_encoding
from hf_embed.token_files import TokenFile
from hf_embed.tokenization import train_tokenizer_from_iterator, wrap_tokenizer
from hf_embed.tokenize_corpus import tokenize_files

needs_fastokens = pytest.mark.skipif(
    importlib.util.find_spec("fastokens") is None, reason="fastokens is not installed (its wheels skip Windows on ARM)"
)

FRAGMENTS = [
    *("<|endoftext|>", "<|endoftext|", "<|", "|>", "endoftext", "<<|endoftext|>>"),
    *(" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x85", "\u00a0", "\u1680", "\u2000"),
    *("\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b", "\ufeff", "\x1c", "\x1f"),
    *("'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "\u2019s", "''", "'"),
    *("hello", "Hello", "WORLD", "a", "I", "_", "__init__", "x1", "123", "4567", "٣٤", "Ⅻ", "½", "²"),
    *("漢字", "日本語", "한국어", "ไทย", "العربية", "עברית", "Ελληνικά", "кириллица"),
    *("😀", "👍🏽", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "❤️", "\ufe0f", "\u200d"),
    *("e\u0301", "\u0301", "a\u0300\u0316", "ﬁ", "Å", "A\u030a"),
    *(".", ",", "!", "?", "...", "--", "—", "…", "«", "»", "“", "”", "(", ")", "$", "%", "#", "\\", "/", "|"),
    *("~", "`", "^", "*", "=", "+", "-", "@", "&", "<", ">", "\x00", "\x7f", "\U0010ffff"),
]
RUN_CHARS = ["a", "Z", "é", "漢", "😀", "1", "٣", "-", "=", "_", "*", ".", " ", "\n", "\t", "\u3000", "ab", "\r\n"]

arbitrary_texts = st.text(max_size=300)
fragment_texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=60).map("".join)
# one character repeated: pieces of more than 500 bytes take another merge path in some engines
long_runs = st.tuples(st.text(max_size=20), st.sampled_from(RUN_CHARS), st.integers(100, 1500), st.text(max_size=20))
long_runs = long_runs.map(lambda t: t[0] + t[1] * t[2] + t[3])


@pytest.fixture(scope="module")
def fastokens_encoder(gpt2_tok):
    with Encoder(gpt2_tok) as encoder:  # all cores: never fewer threads than fastokens' pool has
        if encoder.engine != "fastokens":
            pytest.skip(f"fastokens is not used here: {encoder.fallback}")
        yield encoder


def same_ids_everywhere(encoder, tiktoken_gpt2, gpt2_tok, text):
    (ids,) = encoder.encode_batch([text])
    expected = tiktoken_gpt2.encode(text, allowed_special="all")
    assert ids.tolist() == expected, repr(text[:200])
    assert gpt2_tok.backend_tokenizer.encode(text, add_special_tokens=False).ids == expected


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(arbitrary_texts, fragment_texts, long_runs))
def test_fastokens_equals_both_references_on_arbitrary_unicode(fastokens_encoder, tiktoken_gpt2, gpt2_tok, text):
    """Differential: the fast engine against both references (every 32nd call is also checked inside)."""
    same_ids_everywhere(fastokens_encoder, tiktoken_gpt2, gpt2_tok, text)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(parts=st.lists(st.one_of(st.sampled_from(FRAGMENTS), long_runs, st.just("The cat. ")), min_size=1, max_size=30))
def test_fastokens_on_long_texts(fastokens_encoder, tiktoken_gpt2, gpt2_tok, parts):
    """Texts of 70-300 KB: fastokens splits one input of 64 KiB or more over threads and stitches the results."""
    unit = "".join(parts)
    same_ids_everywhere(fastokens_encoder, tiktoken_gpt2, gpt2_tok, (unit * (300_000 // len(unit) + 1))[:300_000])


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.sampled_from([*FRAGMENTS, "word", " word", "\nline", " 42", "_x"]), max_size=80))
def test_pieces_encode_like_the_whole_text(tiktoken_gpt2, parts):
    text = "".join(parts)
    pieces = list(split_text(text, 8))
    assert "".join(pieces) == text
    encoded = [i for piece in pieces for i in tiktoken_gpt2.encode(piece, allowed_special="all")]
    assert encoded == tiktoken_gpt2.encode(text, allowed_special="all")


@pytest.mark.slow
@needs_fastokens
def test_a_mismatch_is_encoded_again_by_tiktoken_and_recorded(gpt2_tok, tiktoken_gpt2, tmp_path, monkeypatch):
    """fastokens is checked on every run; were it ever to differ, tiktoken encodes everything again."""
    text = make_text(3000, seed=6)
    expected = tiktoken_gpt2.encode(text, allowed_special="all")

    def wrong(self, texts):  # as if fastokens had a bug: one id off in every piece
        results = [tiktoken_gpt2.encode_to_numpy(t, allowed_special="all").copy() for t in texts]
        for ids in results:
            ids[-1] = (ids[-1] + 1) % 50257
        self._pieces, checked = self._pieces + len(texts), self._pieces
        if checked % fast_encoding.CHECK_EVERY == 0:
            raise EngineMismatch(f"fastokens and tiktoken gave different ids for piece {checked}")
        return results

    monkeypatch.setattr(Encoder, "_fastokens_batch", wrong)
    with Encoder(gpt2_tok) as encoder:
        assert encoder.encode_text(text).tolist() == expected
        assert encoder.record()["engine"] == "tiktoken"
        assert encoder.record()["engine_fallback"] == "fastokens and tiktoken gave different ids for piece 0"
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    header = tokenize_files([path], tmp_path / "t.bin", gpt2_tok, chunk_chars=300)
    assert header["engine"] == "tiktoken" and header["engine_fallback"].startswith("fastokens and tiktoken gave")
    file = TokenFile(tmp_path / "t.bin")
    assert file.read(0, file.count).tolist() == expected


@pytest.mark.slow
@needs_fastokens
def test_fastokens_never_runs_on_more_threads_than_asked(gpt2_tok, monkeypatch):
    monkeypatch.setattr(fast_encoding, "_fastokens_threads", [2])  # its pool was started with 2 threads
    with Encoder(gpt2_tok, num_threads=1) as encoder:
        assert encoder.engine == "tiktoken"
        assert encoder.fallback == "fastokens' thread pool in this process has 2 threads, more than the 1 asked for"
        assert encoder.encode_batch(["Hello world"])[0].tolist() == [15496, 995]
    with Encoder(gpt2_tok, num_threads=2) as encoder:
        assert encoder.engine == "fastokens" and encoder.fallback is None


def test_vocabulary_tiktoken_cannot_express_falls_back(tmp_path):
    tokenizer = train_tokenizer_from_iterator([make_text(300, seed=1)], vocab_size=400, min_frequency=1)
    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.Lowercase()
    lowered = wrap_tokenizer(backend)
    assert tiktoken_encoding(lowered) is None
    text = "Hello WORLD " + make_text(100, seed=2)
    header = tokenize_files([write_text(tmp_path / "x.txt", text)], tmp_path / "t.bin", lowered)
    assert header["engine"] == "tokenizers" and read_tokens(tmp_path / "t.bin") == ids_of(lowered, text)
    assert header["engine_fallback"] == "tiktoken cannot express this vocabulary (a normalizer)"
