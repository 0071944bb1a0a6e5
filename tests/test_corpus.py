"""Corpus loading: paths, folders, bundled names, and every kind of bad input as one UserError."""

import importlib

import pytest
import torch

from rnnplay import corpora
from rnnplay.data.corpus import load_corpus, resolve_corpus
from rnnplay.errors import UserError


def test_file_round_trip_non_ascii(tmp_path):
    text = "héllo wörld 日本\nzweite Zeile ✓\n"
    p = tmp_path / "c.txt"
    p.write_text(text, encoding="utf-8")
    c = load_corpus(str(p))
    assert c.vocab.decode(c.data) == text
    assert len(c) == len(text)
    assert c.n_bytes == len(text.encode("utf-8"))


def test_small_chunks_split_multibyte_characters(tmp_path):
    text = "añ日本語€𝄞" * 50
    p = tmp_path / "c.txt"
    p.write_text(text, encoding="utf-8")
    c = load_corpus(str(p), chunk_bytes=7)  # chunk borders fall inside multi-byte characters
    assert c.vocab.decode(c.data) == text


def test_bom_is_dropped(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfabc\n")
    assert load_corpus(str(p)).vocab.decode(load_corpus(str(p)).data) == "abc\n"


def test_missing(tmp_path):
    with pytest.raises(UserError, match="no such file or folder, and not a bundled corpus"):
        load_corpus(str(tmp_path / "nope.txt"))


def test_empty_file_and_empty_folder(tmp_path):
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(UserError, match="is empty"):
        load_corpus(str(tmp_path / "e.txt"))
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="holds no files"):
        load_corpus(str(tmp_path / "d"))


def test_binary_names_file_and_offset(tmp_path):
    p = tmp_path / "b.bin"
    p.write_bytes(b"abc\x00def")
    with pytest.raises(UserError, match=r"b\.bin.*binary.*offset 3"):
        load_corpus(str(p))


def test_non_utf8_names_byte_offset(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("abcdé".encode("latin-1") + b"xyz")
    with pytest.raises(UserError, match=r"latin1\.txt.*not valid UTF-8 \(byte offset 4\)"):
        load_corpus(str(p))
    # an invalid byte right after a chunk border, with a character split over the border
    q = tmp_path / "late.txt"
    q.write_bytes("ab€".encode() + b"\xff")
    with pytest.raises(UserError, match=r"byte offset 5"):
        load_corpus(str(q), chunk_bytes=3)
    t = tmp_path / "trunc.txt"
    t.write_bytes(b"abc\xe2\x82")  # ends inside a character
    with pytest.raises(UserError, match="ends inside a character at byte offset 3"):
        load_corpus(str(t))


def test_folder_sorted_concatenation_skips_hidden(tmp_path):
    d = tmp_path / "texts"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text("BBB")
    (d / "a.txt").write_text("AAA")
    (d / "sub" / "c.txt").write_text("CCC")
    (d / ".hidden").write_text("never")
    c = load_corpus(str(d))
    assert c.vocab.decode(c.data) == "AAABBBCCC"
    assert c.source.kind == "folder" and len(c.source.files) == 3


def test_folder_with_a_binary_file_names_it(tmp_path):
    d = tmp_path / "t"
    d.mkdir()
    (d / "a.txt").write_text("fine")
    (d / "z.png").write_bytes(b"\x89PNG\x00\x00")
    with pytest.raises(UserError, match=r"z\.png.*binary"):
        load_corpus(str(d))


def test_dtype_follows_vocabulary_size(tmp_path):
    p = tmp_path / "wide.txt"
    p.write_text("".join(chr(0x4E00 + i) for i in range(300)), encoding="utf-8")
    assert load_corpus(str(p)).data.dtype == torch.int16
    p.write_text("abc", encoding="utf-8")
    assert load_corpus(str(p)).data.dtype == torch.uint8


def test_split_is_last_ten_percent(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("".join(chr(97 + i % 26) for i in range(1000)))
    c = load_corpus(str(p))
    train, val = c.split()
    assert train.numel() == 900 and val.numel() == 100
    assert torch.equal(torch.cat([train, val]), c.data)


def test_too_short_to_split(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abc")
    with pytest.raises(UserError, match="too short"):
        load_corpus(str(p)).split()


def test_path_wins_over_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "play").write_text("my own play")
    assert resolve_corpus("play").kind == "file"


@pytest.mark.parametrize("name", list(corpora.BUNDLED))
def test_bundled_corpus_is_what_its_generator_writes(name):
    entry = corpora.BUNDLED[name]
    gen = importlib.import_module(f"rnnplay.corpora.{entry.generator}")
    assert corpora.path_of(name).read_text(encoding="utf-8") == gen.generate()
    c = load_corpus(name)
    assert len(c) > 100_000 and c.source.kind == "bundled"


def test_checkable_corpora_check_out():
    from rnnplay.corpora import gen_arithmetic, gen_brackets

    ok, total = gen_arithmetic.check(corpora.path_of("arithmetic").read_text())
    assert ok == total > 10_000
    assert gen_arithmetic.check("1+1=3\n2+2=4\nnonsense") == (1, 2)
    ok, total = gen_brackets.check(corpora.path_of("brackets").read_text())
    assert ok == total > 10_000
    assert gen_brackets.check("([)]\n(())\n") == (1, 2)


def test_python_corpus_from_stdlib():
    c = load_corpus("python")
    assert c.source.kind == "python" and len(c) > 1_000_000
    assert "def " in c.vocab.decode(c.data[:20000])
