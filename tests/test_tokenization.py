"""The offline GPT-2 tokenizer against transformers' GPT2Tokenizer and tiktoken."""

from __future__ import annotations

import importlib.util
import pickle
import random
import shutil
import threading

import pytest
from transformers import AutoTokenizer, GPT2Tokenizer, PreTrainedTokenizerFast

from helpers import FAST_ENGINE, TRICKY, ids_of, make_text, read_tokens, write_text
from hf_embed import HfEmbedConfig, fast_encoding, tokenization
from hf_embed.tokenization import (
    ENDOFTEXT,
    Encoder,
    byte_level_bpe,
    check_sha256,
    check_vocab_compatible,
    encode,
    encode_array,
    gpt2_tokenizer,
    gpt2_vocab_files,
    tiktoken_encoding,
    tokenizer_sha256,
    train_tokenizer,
    train_tokenizer_from_iterator,
    vocab_size_of,
)
from hf_embed.tokenize_corpus import tokenize_files

TRICKY_TAIL = "  spaces\t\ttabs\r\nCRLF 日本語 😀👨\u200d👩\u200d👧 e\u0301 'll <|endoftext|>" + "=" * 600 + " end"


needs_fastokens = pytest.mark.skipif(
    importlib.util.find_spec("fastokens") is None, reason="fastokens is not installed (its wheels skip Windows on ARM)"
)


@pytest.fixture
def gpt2_tok_fresh():
    """A tokenizer of its own: these tests leave call options on it."""
    return gpt2_tokenizer()


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


@pytest.mark.slow
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


@pytest.mark.slow
@needs_fastokens
def test_large_texts_take_the_engine_and_give_the_same_ids(gpt2_tok, tiktoken_gpt2, monkeypatch):
    text = make_text(20_000, seed=5) + "<|endoftext|>" + TRICKY_TAIL
    expected = tiktoken_gpt2.encode(text, allowed_special="all")
    built = []
    monkeypatch.setattr(tokenization, "LARGE_TEXT", 1000)  # every text here is "large"
    monkeypatch.setattr(fast_encoding, "PIECE_CHARS", 5000)  # and in many pieces
    monkeypatch.setattr(tokenization.Encoder, "__enter__", lambda self: built.append(self.engine) or self)
    assert encode(gpt2_tok, text) == expected
    assert encode_array(gpt2_tok, text).tolist() == expected
    assert encode(gpt2_tok.backend_tokenizer, text) == expected
    assert built == ["fastokens"] * 3


def test_call_options_left_on_the_tokenizer_change_neither_ids_nor_hash(gpt2_tok_fresh):
    """transformers leaves a call's truncation and padding on the backend; `encode` and the hash ignore them."""
    tok = gpt2_tok_fresh
    text = "hello world " * 20
    digest = tokenizer_sha256(tok)
    tok("a b c d e f g h", truncation=True, max_length=4)
    assert tok.backend_tokenizer.truncation is not None  # what transformers leaves behind
    assert len(encode(tok, text)) == len(encode(tok.backend_tokenizer, text)) == 41
    tok("a b", padding="max_length", max_length=10)
    assert len(encode(tok, "hello")) == len(encode(tok.backend_tokenizer, "hello")) == 1
    assert tokenizer_sha256(tok) == digest
    with Encoder(tok) as encoder:
        assert len(encoder.encode_text(text)) == 41


@pytest.mark.slow
def test_one_tokenizer_shared_by_threads_with_mixed_options_equals_one_thread(gpt2_tok_fresh):
    """4 threads x 1000 calls with different truncation/padding options on one tokenizer: every result is the
    one a single thread gets (the calls' option setting and encoding run under the tokenizer's lock)."""
    tok = gpt2_tok_fresh
    texts = [make_text(n, seed=n) for n in (5, 40, 90)]
    options = [{}, {"truncation": True, "max_length": 8}, {"padding": "max_length", "max_length": 64}]
    options.append({"truncation": True, "max_length": 16, "padding": "max_length"})
    calls = [[(texts[(t + i) % 3], options[(t * 7 + i) % 4]) for i in range(1000)] for t in range(4)]
    expected = [[tok(text, **kw)["input_ids"] for text, kw in thread_calls] for thread_calls in calls]
    results = [None] * 4

    def work(t):
        results[t] = [tok(text, **kw)["input_ids"] for text, kw in calls[t]]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == expected
    assert pickle.loads(pickle.dumps(tok))("Hello world")["input_ids"] == [15496, 995]  # the lock is not pickled


def varied_text(num_words: int, seed: int) -> str:
    rng = random.Random(seed)
    letters = "etaoinshrdlucmfwypvbgkqjxzéü"
    return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(1, 8))) for _ in range(num_words))


def test_train_tokenizer_and_its_tiktoken_engine(tmp_path):
    corpus = [varied_text(2000, seed=s) for s in range(5)] + [make_text(400, seed=1)]
    tokenizer = train_tokenizer_from_iterator(corpus, vocab_size=600, min_frequency=1)
    assert len(tokenizer) == 600 and tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    tokenizer.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    text = make_text(300, seed=99) + "<|endoftext|>" + TRICKY
    assert ids_of(reloaded, text) == ids_of(tokenizer, text)
    assert tokenizer.decode(ids_of(tokenizer, text)) == text
    encoding = tiktoken_encoding(tokenizer)
    assert encoding is not None
    assert encoding.encode(text, allowed_special="all") == ids_of(tokenizer, text)
    path = write_text(tmp_path / "c.txt", text)
    header = tokenize_files([path], tmp_path / "t.bin", tokenizer)
    assert header["engine"] == FAST_ENGINE and read_tokens(tmp_path / "t.bin") == ids_of(tokenizer, text)
    with pytest.raises(
        ValueError, match=r"`vocab_size` must be an integer >= 258 \(256 bytes \+ <\|endoftext\|> \+ 1\), got 1"
    ):
        train_tokenizer_from_iterator(corpus, vocab_size=100)


def test_model_and_tokenizer_vocab_must_agree():
    tokenizer = train_tokenizer_from_iterator([make_text(300, seed=1)], vocab_size=400, min_frequency=1)
    check_vocab_compatible(HfEmbedConfig.from_preset("tiny", vocab_size=400), tokenizer)
    with pytest.raises(ValueError, match=r"the tokenizer produces 400 ids but the model's vocab_size is 99"):
        check_vocab_compatible(HfEmbedConfig.from_preset("tiny"), tokenizer)


def test_train_tokenizer_on_files_reads_them_line_by_line(tmp_path):
    """`train_tokenizer(files)` is tokenizers' `train(files)`: the vocabulary of the files' lines, line ends kept."""
    texts = [make_text(1500, seed=s) + "\r\n\n  trailing  \n" for s in range(3)]
    files = [write_text(tmp_path / f"{i}.txt", text) for i, text in enumerate(texts)]
    from_files = train_tokenizer(files, vocab_size=400, min_frequency=1)
    lines = [line for text in texts for line in text.splitlines(keepends=True)]
    from_lines = train_tokenizer_from_iterator(lines, vocab_size=400, min_frequency=1)
    assert len(from_files) == 400 and from_files.get_vocab() == from_lines.get_vocab()
    assert ids_of(from_files, TRICKY) == ids_of(from_lines, TRICKY)


def test_train_tokenizer_inputs_are_clear_errors(tmp_path):
    good = write_text(tmp_path / "good.txt", make_text(300, seed=1))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text\n" * 5 + b"\xff then more")
    with pytest.raises(ValueError, match=r"bad\.txt: not valid UTF-8 at byte 50"):
        train_tokenizer([good, bad], vocab_size=300)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: no such file"):
        train_tokenizer([tmp_path / "missing.txt"], vocab_size=300)
    with pytest.raises(ValueError, match=r"is a directory"):
        train_tokenizer([tmp_path], vocab_size=300)
    with pytest.raises(TypeError, match=r"`files` must be a list of paths, got PosixPath"):
        train_tokenizer(good, vocab_size=300)
    with pytest.raises(
        TypeError, match=r"`texts` must be an iterable of texts, got one str \(5 characters\): pass \[text\]"
    ):
        train_tokenizer_from_iterator("hello", vocab_size=300)
    with pytest.raises(TypeError, match=r"text 1 is a bytes, not a str"):
        train_tokenizer_from_iterator(["hello", b"world"], vocab_size=300)
    with pytest.raises(TypeError, match="positional argument"):
        train_tokenizer_from_iterator(["hello"], 300)  # options are keyword-only
