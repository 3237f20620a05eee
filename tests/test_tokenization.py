"""The offline GPT-2 tokenizer against transformers' GPT2Tokenizer and tiktoken."""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoTokenizer, GPT2Tokenizer, PreTrainedTokenizerFast

from hf_embed.tokenization import ENDOFTEXT, byte_level_bpe, check_sha256, encode, gpt2_vocab_files, vocab_size_of

VARIED = [
    "Hello, world!",
    "café naïve résumé Ünïcödé Straße",
    "日本語のテキスト 中文 한국어",
    "emoji 🤗🚀 and a family 👨\u200d👩\u200d👧 and flags 🇫🇷",
    "  lots   of\t\twhitespace   \n\n\n   trailing   ",
    "windows\r\nline\r\nends\r\n",
    "first<|endoftext|>second <|endoftext|> third",
    "I'm sure you'll see they've DON'T 'quoted'",
    "numbers 1234567 3.14159 1,000,000 ½ ⅔",
    "code: def f(x):\n    return x ** 2  # comment",
    "",
    " ",
    "\x00nul and \x7f del",
]


def test_gpt2_tokenizer_basics(gpt2_tok):
    assert isinstance(gpt2_tok, PreTrainedTokenizerFast)
    assert len(gpt2_tok) == 50257
    assert gpt2_tok.convert_tokens_to_ids(ENDOFTEXT) == 50256
    assert gpt2_tok.eos_token_id == gpt2_tok.bos_token_id == 50256
    assert gpt2_tok.model_max_length == 1024
    assert gpt2_tok("Hello world")["input_ids"] == [15496, 995]


@pytest.mark.parametrize("text", VARIED)
def test_ids_equal_gpt2tokenizer_and_tiktoken(gpt2_tok, tiktoken_gpt2, text):
    vocab_file, merges_file = gpt2_vocab_files()
    reference = GPT2Tokenizer(str(vocab_file), str(merges_file))
    ids = gpt2_tok(text)["input_ids"]
    assert ids == reference(text)["input_ids"]
    assert ids == tiktoken_gpt2.encode(text, allowed_special="all")
    assert gpt2_tok.decode(ids) == text


def test_ids_equal_tiktoken_on_generated_text(gpt2_tok, tiktoken_gpt2, text):
    assert encode(gpt2_tok, text) == tiktoken_gpt2.encode(text, allowed_special="all")


def test_save_and_reload_with_autotokenizer(gpt2_tok, tmp_path, text):
    gpt2_tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(reloaded) == 50257
    assert reloaded.eos_token == ENDOFTEXT
    assert reloaded.model_max_length == 1024
    assert reloaded(text)["input_ids"] == gpt2_tok(text)["input_ids"]


def test_encode_accepts_every_tokenizer_kind(gpt2_tok, tiktoken_gpt2):
    text = "a<|endoftext|>b"
    expected = [64, 50256, 65]
    assert encode(gpt2_tok, text) == expected
    assert encode(gpt2_tok.backend_tokenizer, text) == expected
    assert encode(tiktoken_gpt2, text) == expected
    assert vocab_size_of(gpt2_tok) == vocab_size_of(gpt2_tok.backend_tokenizer) == vocab_size_of(tiktoken_gpt2) == 50257


def test_corrupt_vocabulary_file_is_named(tmp_path):
    _vocab_file, merges_file = gpt2_vocab_files()
    bad = tmp_path / "vocab.bpe"
    shutil.copy(merges_file, bad)
    with bad.open("a") as f:
        f.write("x y\n")
    with pytest.raises(ValueError, match=r"vocab\.bpe: sha256 .* does not match"):
        check_sha256(bad, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")
    check_sha256(merges_file, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")


def test_byte_level_bpe_from_files(gpt2_tok):
    tokenizer = byte_level_bpe(*gpt2_vocab_files())
    assert tokenizer.get_vocab_size() == 50257
    assert tokenizer.encode("Hello world<|endoftext|>").ids == [15496, 995, 50256]
