"""Fine-tuning (`rnnplay train --init-from CKPT --corpus NEW`): an extended vocabulary where the old
characters keep their rows, new ones get a fresh model's rows, every other weight is the parent's;
the run is recorded naming its parent; bad combinations are one line, exit 2."""

import json
import os

import pytest
import torch

from rnnplay.cli import main
from rnnplay.model import CharRNN
from rnnplay.pipeline import Resume, TrainConfig, build_run
from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OLD = "abc abd bca. cab dab.\n" * 120  # 7 characters
NEW = "xyz abc zyx! bca ay.\n" * 120  # x y z ! are new; d is not in it
SMALL = dict(hidden=16, layers=2, embed=8, seq_len=16, batch_size=4, eval_every=5, sample_every=0,
             device="cpu")
TINY = ["--hidden", "16", "--layers", "2", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "5", "--sample-every", "0", "--device", "cpu"]


@pytest.fixture
def corpora(tmp_path):
    (tmp_path / "old.txt").write_text(OLD)
    (tmp_path / "new.txt").write_text(NEW)
    return str(tmp_path / "old.txt"), str(tmp_path / "new.txt")


@pytest.fixture
def parent(tmp_path, corpora, capsys):
    out = str(tmp_path / "parent.pt")
    assert main(["train", *TINY, "--corpus", corpora[0], "--steps", "6", "--out", out, "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    return out, run_id


def test_extended_vocabulary_keeps_old_rows_and_gives_new_ones_fresh_rows(parent, corpora):
    path, _ = parent
    old_model, old_vocab = model_from_checkpoint(load_checkpoint(path))
    config = TrainConfig(corpus=corpora[1], steps=10, **SMALL)
    run = build_run(config, init_from=Resume.open(path))
    vocab, model = run.vocab, run.model
    assert vocab.chars == sorted(set(OLD) | set(NEW)) and "d" in vocab  # old chars stay, new ones join
    assert run.parent == path
    torch.manual_seed(config.seed)  # what a fresh model of this size starts from (build_run's seeded init)
    fresh = CharRNN(len(vocab), 16, 2, embed_size=8)
    old_w, new_w, fresh_w = old_model.state_dict(), model.state_dict(), fresh.state_dict()
    for name in new_w:
        if name in ("embedding.weight", "fc.weight", "fc.bias"):
            for ch in vocab.chars:
                row = new_w[name][vocab.stoi[ch]]
                want = old_w[name][old_vocab.stoi[ch]] if ch in old_vocab else fresh_w[name][vocab.stoi[ch]]
                torch.testing.assert_close(row, want, rtol=0, atol=0, msg=f"{name} row {ch!r}")
        else:
            torch.testing.assert_close(new_w[name], old_w[name], rtol=0, atol=0, msg=name)
    assert not torch.equal(old_w["fc.bias"], fresh_w["fc.bias"][:len(old_vocab)])  # the test can tell them apart
    # the corpus is encoded in the extended vocabulary
    assert vocab.decode(torch.cat([run.train_data, run.val_data])) == NEW
    # same predictions as the parent on text of the old alphabet, restricted to the old characters
    x_old = old_vocab.encode("abc dab.").long().unsqueeze(0)
    x_new = vocab.encode("abc dab.").long().unsqueeze(0)
    with torch.no_grad():
        lo, _ = old_model(x_old)
        ln, _ = model.eval()(x_new)
    keep = torch.tensor([vocab.stoi[c] for c in old_vocab.chars])
    torch.testing.assert_close(ln[..., keep], lo, rtol=1e-5, atol=1e-5)


def test_cli_init_from_records_a_new_run_naming_its_parent_and_resumes(parent, corpora, tmp_path, capsys):
    from rnnplay.runs.store import RunStore

    path, parent_id = parent
    out = str(tmp_path / "fine.pt")
    rc = main(["train", "--init-from", path, "--corpus", corpora[1], "--steps", "8", "--out", out, "--json",
               "--seq-len", "16", "--batch-size", "4", "--eval-every", "4", "--sample-every", "0", "--device", "cpu"])
    res, err = capsys.readouterr()
    assert rc == 0, err
    result = json.loads(res.strip().splitlines()[-1])
    assert result["status"] == "completed" and result["step"] == 8
    assert "starting from the weights of" in err and "4 new characters got fresh rows" in err
    payload = load_checkpoint(out)
    assert payload["vocab"] == "".join(sorted(set(OLD) | set(NEW))) and payload["parent"] == path
    assert (payload["model"]["hidden_size"], payload["model"]["num_layers"]) == (16, 2)  # the parent's shape
    assert result["vocab_size"] == len(payload["vocab"]) and result["corpus_vocab_size"] == len(set(NEW))
    assert f"(the model's {len(payload['vocab'])}: the parent's and the corpus' characters)" in err
    with RunStore.open(os.environ["RNNPLAY_RUNS_DB"]) as store:
        row = store.get(result["run_id"])
        assert row.parent_id == parent_id and row.summary["init_from"] == path
    assert main(["runs", "show", str(result["run_id"])]) == 0
    assert f"fine-tunes run {parent_id}, {path}" in capsys.readouterr().out
    # the fine-tuned run resumes on its corpus (whose vocabulary is a part of the checkpoint's)
    rc = main(["train", "--resume", out, "--steps", "10", "--json"])
    res, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(res.strip().splitlines()[-1])["step"] == 10


@pytest.mark.parametrize("extra, needle", [
    (["--hidden", "32"], "--hidden 32 differs from the --init-from checkpoint's 16"),
    (["--resume", "PARENT"], "choose one"),
])
def test_cli_init_from_bad_combinations(parent, corpora, capsys, extra, needle):
    path, _ = parent
    extra = [path if a == "PARENT" else a for a in extra]
    rc = main(["train", "--init-from", path, "--corpus", corpora[1], "--steps", "3", "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_cli_init_from_a_missing_checkpoint(corpora, tmp_path, capsys):
    rc = main(["train", "--init-from", str(tmp_path / "none.pt"), "--corpus", corpora[1], "--steps", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
