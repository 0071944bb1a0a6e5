"""Several samples in one batch, stop texts and beam search: the library (rnnplay.generate) and
`rnnplay sample --num-samples/--stop/--separator/--beam` end to end."""

import pytest
import torch

from rnnplay import CharRNN
from rnnplay.cli import main
from rnnplay.data.vocab import Vocab
from rnnplay.generate.beam import beam_search
from rnnplay.generate.sampling import sample_texts

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHARS = "\nab c."


@pytest.fixture(params=["tanh", "lstm"])
def model(request):
    torch.manual_seed(5)
    return CharRNN(len(CHARS), hidden_size=12, num_layers=2, embed_size=6, cell=request.param).eval()


def test_num_samples_are_the_rows_of_one_batch(model):
    vocab = Vocab(CHARS)
    texts = sample_texts(model, vocab, "ab", 5, 40, generator=torch.Generator().manual_seed(9))
    prime = vocab.encode("ab").long().unsqueeze(0).expand(5, -1)
    rows = model.generate(prime, 40, generator=torch.Generator().manual_seed(9))  # (5, 40)
    assert texts == [vocab.decode(r) for r in rows]
    assert len(set(texts)) > 1  # rows draw their own characters
    greedy = sample_texts(model, vocab, "ab", 3, 20, greedy=True)
    assert greedy == [vocab.decode(model.generate(prime[0], 20, greedy=True))] * 3


@pytest.mark.parametrize("stop", ["c", ". ", "\n"])
def test_each_sample_ends_before_its_first_stop(model, stop):
    vocab = Vocab(CHARS)
    full = sample_texts(model, vocab, "a", 6, 200, generator=torch.Generator().manual_seed(2))
    cut = sample_texts(model, vocab, "a", 6, 200, stop=stop, generator=torch.Generator().manual_seed(2))
    for f, c in zip(full, cut):
        assert stop not in c
        assert c == (f[:f.index(stop)] if stop in f else f)
    assert any(stop in f for f in full)  # the test saw a stop


def test_streamed_pieces_make_the_sample_and_hold_back_a_partial_stop(model):
    vocab = Vocab(CHARS)
    for stop, length in [("c.", 300), ("a.c.", 400)]:
        pieces: list[str] = []
        (text,) = sample_texts(model, vocab, "a", 1, length, stop=stop,
                               generator=torch.Generator().manual_seed(4), on_text=pieces.append)
        assert "".join(pieces) == text and all(stop not in p for p in pieces)
    assert len(pieces) > 1  # a long one arrived in several pieces


# ---- the command ------------------------------------------------------------------------------

CORPUS = "ab ba. abba cab.\nbab aab.\n" * 80
TINY = ["--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "5", "--sample-every", "0", "--device", "cpu", "--no-record"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    (folder / "c.txt").write_text(CORPUS)
    out = str(folder / "m.pt")
    assert main(["train", *TINY, "--corpus", str(folder / "c.txt"), "--steps", "5", "--out", out]) == 0
    return out


def _run(capsys, *argv):
    capsys.readouterr()
    try:
        rc = main(["sample", "--checkpoint", *argv])
    except SystemExit as exc:
        rc = exc.code
    return (rc, *capsys.readouterr())


def test_cli_num_samples_stop_and_separator(ckpt, capsys):
    rc, out, err = _run(capsys, ckpt, "--num-samples", "4", "--stop", "\\n", "--prime", "ab",
                        "--seed", "1", "--length", "60", "--separator", "")
    assert rc == 0 and err == ""
    lines = out.split("\n")
    assert len(lines) == 5 and lines[-1] == "" and all(ln.startswith("ab") for ln in lines[:4])
    rc, out2, _ = _run(capsys, ckpt, "--num-samples", "4", "--stop", "\\n", "--prime", "ab",
                       "--seed", "1", "--length", "60")
    assert out2 == "\n---\n".join(lines[:4]) + "\n"  # the same samples, the default separator between
    rc, one, _ = _run(capsys, ckpt, "--stop", ".", "--seed", "3", "--length", "300")
    assert rc == 0 and "." not in one and one.endswith("\n")


def test_cli_beam_is_deterministic_and_is_the_beam_search(ckpt, capsys):
    from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

    rc, out, err = _run(capsys, ckpt, "--beam", "4", "--num-samples", "2", "--prime", "ab", "--length", "12",
                        "--stop", ".")
    assert rc == 0 and err == ""
    assert _run(capsys, ckpt, "--beam", "4", "--num-samples", "2", "--prime", "ab", "--length", "12",
                "--stop", ".")[1] == out
    model, vocab = model_from_checkpoint(load_checkpoint(ckpt))
    hyps = beam_search(model, vocab.encode("ab").long(), 12, 4, stop=tuple(vocab.encode(".").tolist()))
    want = ["ab" + vocab.decode(h.tokens[:-1] if h.finished else h.tokens) for h in hyps[:2]]
    assert out == f"{want[0]}\n---\n{want[1]}\n"


@pytest.mark.parametrize("argv, needle", [
    (["--beam", "3", "--temperature", "0.5"], "--temperature"),
    (["--beam", "3", "--greedy"], "--greedy"),
    (["--beam", "2", "--num-samples", "3"], "at most 2 texts"),
    (["--stop", "Z"], "could never end a sample"),
    (["--stop", ""], "--stop is empty"),
    (["--num-samples", "0"], "--num-samples"),
    (["--beam", "0"], "--beam"),
])
def test_cli_bad_sample_options_are_one_line_exit_2(ckpt, capsys, argv, needle):
    rc, out, err = _run(capsys, ckpt, *argv)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and needle in err, err
