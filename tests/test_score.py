"""Scoring a text: the streamed scorer against a direct cross-entropy, chunking, unknown characters,
and `rnnplay score` end to end (files, stdin, --json, --per-char, bad input)."""

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F

from rnnplay import CharRNN
from rnnplay.cli import main
from rnnplay.data.vocab import Vocab
from rnnplay.generate.score import StreamScorer, score_text

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHARS = "\nabcdefgh ."
TEXT = ("abc deh. fag hag bead.\n" * 40)[:-1] + "cab"


def tiny(cell: str, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(len(CHARS), hidden_size=12, num_layers=2, embed_size=6, cell=cell).eval()


def direct_nats(model: CharRNN, vocab: Vocab, text: str) -> torch.Tensor:
    """Each character's surprisal from one forward pass over '\\n' + text (the first one after a newline)."""
    idx = vocab.encode("\n" + text).long()
    with torch.no_grad():
        logits, _ = model(idx[:-1].unsqueeze(0))  # (1, T, V)
    return F.cross_entropy(logits[0].double(), idx[1:], reduction="none")  # (T,)


@pytest.mark.parametrize("cell", ["tanh", "gru", "lstm"])
def test_score_equals_direct_cross_entropy(cell):
    model, vocab = tiny(cell), Vocab(CHARS)
    want = direct_nats(model, vocab, TEXT)
    got = score_text(model, vocab, TEXT, lanes=1, segment=100, chunk=7)
    assert got.chars == got.scored == len(TEXT) and got.unknown == 0 and got.exact
    assert got.nats == pytest.approx(float(want.sum()), rel=1e-5)
    assert got.nats_per_char == pytest.approx(float(want.mean()), rel=1e-5)
    assert got.bits_per_char == pytest.approx(float(want.mean()) / math.log(2), rel=1e-5)
    assert got.perplexity == pytest.approx(math.exp(float(want.mean())), rel=1e-5)


@pytest.mark.parametrize("cell", ["tanh", "lstm"])
def test_chunks_blocks_and_pieces_do_not_change_the_result(cell):
    model, vocab = tiny(cell), Vocab(CHARS)
    ref = score_text(model, vocab, TEXT, lanes=1).nats
    for segment, chunk, piece in [(1, 1, 1), (5, 3, 17), (64, 256, 1000), (1000, 9, 3)]:
        scorer = StreamScorer(model, vocab, lanes=1, segment=segment, chunk=chunk)
        for s in range(0, len(TEXT), piece):
            scorer.feed(TEXT[s:s + piece])
        got = scorer.finish()
        assert got.scored == len(TEXT) and got.nats == pytest.approx(ref, rel=1e-5), (segment, chunk, piece)


def test_lanes_short_text_exact_long_text_close_and_flagged():
    model, vocab = tiny("gru"), Vocab(CHARS)
    exact = score_text(model, vocab, TEXT, lanes=1)
    short = score_text(model, vocab, TEXT, lanes=8, segment=len(TEXT))  # under 2 segments: one lane
    assert short.exact and short.nats == pytest.approx(exact.nats, rel=1e-5)
    laned = score_text(model, vocab, TEXT, lanes=8, segment=50, burn_in=40)
    assert not laned.exact and laned.scored == exact.scored
    assert laned.nats == pytest.approx(exact.nats, rel=0.02)  # lane starts only forget > 40 chars back
    assert laned.nats != exact.nats


def test_unknown_characters_are_skipped_counted_and_named():
    model, vocab = tiny("tanh"), Vocab(CHARS)
    dirty = "ZabZc déh\u00e9."  # Z, \u00e9 are not in the vocabulary
    clean = "abc dh."
    got = score_text(model, vocab, dirty, lanes=1)
    want = score_text(model, vocab, clean, lanes=1)
    assert got.chars == len(dirty) and got.scored == len(clean) and got.unknown == 4
    assert dict(got.unknown_chars) == {"Z": 2, "\u00e9": 2}
    assert got.nats == pytest.approx(want.nats, rel=1e-6)


def test_per_char_callback_gives_every_character_in_order():
    model, vocab = tiny("lstm"), Vocab(CHARS)
    text = TEXT[:300] + "XY" + TEXT[300:]
    seen_cps, seen_nats = [], []
    scorer = StreamScorer(model, vocab, lanes=1, segment=40, chunk=16,
                          on_chars=lambda c, n: (seen_cps.append(c.clone()), seen_nats.append(n.clone())))
    for s in range(0, len(text), 33):
        scorer.feed(text[s:s + 33])
    total = scorer.finish()
    cps, nats = torch.cat(seen_cps), torch.cat(seen_nats)
    assert "".join(map(chr, cps.tolist())) == text
    assert torch.isnan(nats[300:302]).all() and not torch.isnan(nats[:300]).any()
    want = direct_nats(model, vocab, TEXT)
    torch.testing.assert_close(nats[~torch.isnan(nats)].double(), want, rtol=1e-5, atol=1e-6)
    assert float(nats[~torch.isnan(nats)].double().sum()) == pytest.approx(total.nats, rel=1e-6)


def test_without_a_newline_the_first_character_is_only_read():
    torch.manual_seed(0)
    vocab = Vocab("abc")
    model = CharRNN(3, hidden_size=8, num_layers=1, embed_size=4).eval()
    got = score_text(model, vocab, "abcabca", lanes=1)
    idx = vocab.encode("abcabca").long()
    with torch.no_grad():
        logits, _ = model(idx[:-1].unsqueeze(0))
    assert got.scored == 6
    assert got.nats == pytest.approx(float(F.cross_entropy(logits[0], idx[1:], reduction="sum")), rel=1e-5)


# ---- the command ------------------------------------------------------------------------------

CORPUS = "hello world, the rain in spain falls mainly on the plain.\n" * 40
TINY = ["--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "5", "--sample-every", "0", "--device", "cpu", "--no-record"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score")
    (folder / "c.txt").write_text(CORPUS)
    out = str(folder / "m.pt")
    assert main(["train", *TINY, "--corpus", str(folder / "c.txt"), "--steps", "5", "--out", out]) == 0
    return out


def _score(capsys, *argv):
    try:
        rc = main(["score", *argv])
    except SystemExit as exc:  # argparse rejects bad flags itself
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_score_file_json_and_plain(ckpt, tmp_path, capsys):
    from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

    capsys.readouterr()
    text = "the plain rain falls on spain.\nhello Q world"
    f = tmp_path / "t.txt"
    f.write_text(text)
    rc, out, err = _score(capsys, "--checkpoint", ckpt, str(f), "--json")
    assert rc == 0 and err == ""
    got = json.loads(out)
    model, vocab = model_from_checkpoint(load_checkpoint(ckpt))
    clean = text.replace("Q", "")
    assert got["chars"] == len(text) and got["scored"] == len(clean) and got["unknown_chars"] == {"Q": 1}
    assert got["nats"] == pytest.approx(float(direct_nats(model, vocab, clean).sum()), rel=1e-5)
    assert got["bits_per_char"] == pytest.approx(got["nats_per_char"] / math.log(2))
    rc, out, err = _score(capsys, "--checkpoint", ckpt, str(f))
    assert rc == 0 and err == "" and len(out.splitlines()) == 2
    assert "1 unknown to the model, skipped: 'Q' x1" in out and f"{got['bits_per_char']:.4f} bits/char" in out


def test_cli_score_stdin_and_per_char(ckpt, capsys, monkeypatch):
    text = "rain\tin spain\\"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    rc, out, err = _score(capsys, "--checkpoint", ckpt, "-", "--per-char")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "char\tbits" and len(lines) == 1 + len(text)
    assert [ln.split("\t")[0] for ln in lines[1:]] == ["r", "a", "i", "n", "\\t", "i", "n", " ", "s", "p",
                                                       "a", "i", "n", "\\\\"]
    assert lines[5] == "\\t\t" and lines[-1] == "\\\\\t"  # tab, backslash: not in the corpus, not scored
    bits = [float(ln.split("\t")[1]) for ln in lines[1:] if ln.split("\t")[1]]
    assert len(bits) == len(text) - 2 and all(b > 0 for b in bits)
    assert err.startswith("stdin: 12 characters scored of 14") and "perplexity" in err


@pytest.mark.parametrize("setup, needle", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b"hello \xff world"), "not valid UTF-8 (byte offset 6)"),
    (lambda p: p.write_bytes(b"plain \xc3"), "ends inside a character"),
    (lambda p: p.write_text(""), "no characters this model can score"),
    (lambda p: p.write_text("QQZZ"), "no characters this model can score"),
])
def test_cli_score_bad_text_is_one_line_exit_2(ckpt, tmp_path, capsys, setup, needle):
    p = tmp_path / "bad.txt"
    setup(p)
    rc, out, err = _score(capsys, "--checkpoint", ckpt, str(p))
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("rnnplay score: error:") and needle in err


def test_cli_score_bad_checkpoint_and_arguments(tmp_path, capsys):
    f = tmp_path / "t.txt"
    f.write_text("hello")
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    for argv, needle in [(["--checkpoint", str(tmp_path / "none.pt"), str(f)], "does not exist"),
                         (["--checkpoint", str(tmp_path / "x.pt"), str(f)], "checkpoint"),
                         ([str(f)], "--checkpoint"),
                         (["--checkpoint", str(f), str(f), "--lanes", "0"], "--lanes")]:
        rc, out, err = _score(capsys, *argv)
        assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and needle in err, (argv, err)


def test_fixed_mmap_threshold_on_glibc():
    """The score command's allocator setting (flat peak RSS over long files) takes effect on glibc."""
    import platform
    import subprocess
    import sys

    # in a child: the setting is process-wide and cannot be undone, and the suite goes on here
    code = "from rnnplay.malloc import fixed_mmap_threshold; print(fixed_mmap_threshold())"
    got = {"True": True, "False": False}[subprocess.run([sys.executable, "-c", code], capture_output=True,
                                                        text=True, check=True, timeout=120).stdout.strip()]
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert got is True
    else:
        assert got is False
