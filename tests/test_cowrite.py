"""Co-writing (rnnplay.generate.CoWriter): proposals are the model's top next characters after
everything chosen so far, whichever way it was chosen (a pick, typing, or letting it run)."""

import pytest
import torch

from rnnplay import CharRNN
from rnnplay.data.vocab import Vocab
from rnnplay.generate.cowrite import CoWriter

CHARS = "\nabcde ."


def tiny(cell):
    torch.manual_seed(2)
    return CharRNN(len(CHARS), hidden_size=10, num_layers=2, embed_size=4, cell=cell).eval()


def next_probs(model, vocab, text, temperature=1.0):
    with torch.no_grad():
        logits, _ = model(vocab.encode(text).long().unsqueeze(0))
    return torch.softmax(logits[0, -1] / temperature, -1)


@pytest.mark.parametrize("cell", ["tanh", "gru", "lstm"])
def test_proposals_follow_the_whole_text_after_picks_typing_and_runs(cell):
    model, vocab = tiny(cell), Vocab(CHARS)
    w = CoWriter(model, vocab, prime="ab", temperature=0.7, generator=torch.Generator().manual_seed(1))
    for step in range(4):
        probs = next_probs(model, vocab, w.text, 0.7)
        p = w.propose(3)
        top = torch.topk(probs, 3)
        assert p.chars == tuple(vocab.chars[i] for i in top.indices.tolist())
        assert p.probs == pytest.approx(top.values.tolist(), rel=1e-4)
        if step == 0:
            w.accept(p.chars[1])  # the second proposal, picked by key
        elif step == 1:
            assert w.accept("cZd") == ["Z"]  # typed; Z is unknown and skipped
        else:
            assert len(w.run(5)) == 5
    assert w.text.startswith("ab") and "Z" not in w.text and len(w.text) == 2 + 1 + 2 + 10
    torch.testing.assert_close(w.probabilities(), next_probs(model, vocab, w.text, 0.7), rtol=1e-4, atol=1e-6)


def test_a_seeded_run_is_reproducible_and_empty_prime_starts_after_a_newline():
    model, vocab = tiny("lstm"), Vocab(CHARS)
    a = CoWriter(model, vocab, generator=torch.Generator().manual_seed(3)).run(30)
    b = CoWriter(model, vocab, generator=torch.Generator().manual_seed(3)).run(30)
    assert a == b and len(a) == 30
    w = CoWriter(model, vocab)
    torch.testing.assert_close(w.probabilities(), next_probs(model, vocab, "\n"), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError):
        CoWriter(model, vocab, prime="aZ")
