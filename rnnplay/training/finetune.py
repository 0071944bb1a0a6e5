"""Fine-tuning: a new run that starts from another checkpoint's weights (``rnnplay train --init-from``).

The new run's vocabulary is the union of the parent's and the new corpus' characters (sorted by
code point, as every vocabulary). A character the parent knew keeps its rows: its embedding row
and its output row (weight and bias) are copied from the parent, wherever the character now sits.
A character the parent lacked gets the rows a fresh model of the new size would have (the run's
seeded initialisation). Every other weight is the parent's. Characters the parent knew but the new
corpus lacks stay in the vocabulary, so the model can still write them.

The parent's model shape (hidden, layers, embed, cell) is the run's; the optimizer, the schedule,
the step count and the data order start afresh (a new run, recorded with the parent named).
"""

from __future__ import annotations


import torch

from rnnplay.config import TrainConfig
from rnnplay.data.vocab import Vocab
from rnnplay.errors import UserError

SHAPE = (("hidden", "hidden_size"), ("layers", "num_layers"), ("embed", "embed_size"))
PIECE = 1 << 22
VOCAB_ROWS = ("embedding.weight", "fc.weight", "fc.bias")  # (V, E), (V, H), (V,): a row per character


def parent_config(given: dict, parent_payload: dict, path: str) -> TrainConfig:
    """The run's settings: ``given`` (the flags), with the model shape taken from the parent.

    A shape setting given with another value than the parent's is a UserError (the weights would not fit).
    """
    m = parent_payload["model"]
    settings = dict(given)
    for name, key in SHAPE:
        have = int(m[key])
        if name in settings and settings[name] is not None and settings[name] != have:
            raise UserError(f"--{name} {settings[name]} differs from the --init-from checkpoint's {have} "
                            f"({path}); leave --{name} out: a fine-tuned run keeps its parent's shape")
        settings[name] = have
    return TrainConfig(**settings)


def merged_vocab(parent: Vocab, corpus: Vocab) -> Vocab:
    """The parent's characters and the corpus' together."""
    return Vocab(set(parent.chars) | set(corpus.chars))


def reencode(data: torch.Tensor, old: Vocab, new: Vocab) -> torch.Tensor:
    """Indices of ``old`` (N,) -> the same characters' indices in ``new`` (a superset), new's dtype."""
    table = torch.tensor([new.stoi[c] for c in old.chars], dtype=torch.long)  # (V_old,)
    out = torch.empty(data.numel(), dtype=new.dtype)  # (N,)
    for s in range(0, data.numel(), PIECE):  # pieces: the long temporary stays small
        out[s:s + PIECE] = table[data[s:s + PIECE].long()]
    return out


@torch.no_grad()
def load_parent_weights(model: torch.nn.Module, parent_payload: dict, vocab: Vocab, path: str) -> int:
    """Copy the parent's weights into ``model`` (built for ``vocab``, freshly initialised).

    Returns the number of characters that got new rows.
    """
    from rnnplay.training.checkpoint import model_cell

    cell = model_cell(parent_payload["model"])
    if getattr(model, "cell", "tanh") != cell:
        raise UserError(f"the --init-from checkpoint {path!r} has a {cell} cell and this run builds a "
                        f"{getattr(model, 'cell', 'tanh')} one; use the same cell")
    parent_vocab = Vocab.from_string(parent_payload["vocab"])
    weights = parent_payload["weights"]
    rows_new = torch.tensor([vocab.stoi[c] for c in parent_vocab.chars], dtype=torch.long)  # (V_old,)
    state = model.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise UserError(f"the --init-from checkpoint {path!r} lacks {', '.join(missing[:3])}; use another one")
    for name, tensor in state.items():
        theirs = weights[name]
        if name in VOCAB_ROWS:
            if theirs.shape[1:] != tensor.shape[1:] or theirs.shape[0] != parent_vocab.__len__():
                raise UserError(f"the --init-from checkpoint's {name} is {tuple(theirs.shape)}; it does not fit")
            tensor.index_copy_(0, rows_new.to(tensor.device), theirs.to(tensor))  # old chars keep their rows
        else:
            if theirs.shape != tensor.shape:
                raise UserError(f"the --init-from checkpoint's {name} is {tuple(theirs.shape)}, this run's "
                                f"{tuple(tensor.shape)}; it does not fit")
            tensor.copy_(theirs)
    return len(vocab) - len(parent_vocab)


def describe(path: str, new_chars: int, vocab: Vocab) -> str:
    """One line for stderr: what the run starts from."""
    extra = f"; {new_chars} new character{'s' if new_chars != 1 else ''} got fresh rows" if new_chars else ""
    return f"starting from the weights of {path} ({len(vocab)} characters{extra})"


__all__ = ["parent_config", "merged_vocab", "reencode", "load_parent_weights", "describe"]
