"""The from-scratch RNN family of the seed article, with the seed's tanh cell, the GRU and the LSTM.

The classes load on first use (``from rnnplay.model import CharRNN``), so that importing
:mod:`rnnplay.model.kinds` (the settings do, for the cell names) loads no torch.
"""

from importlib import import_module

_WHERE = {
    "RNNCell": "rnnplay.model.tanh_cell",
    "GRUCell": "rnnplay.model.gru_cell",
    "LSTMCell": "rnnplay.model.lstm_cell",
    "RNN": "rnnplay.model.rnn",
    "BidirectionalRNN": "rnnplay.model.birnn",
    "SequenceClassifier": "rnnplay.model.heads",
    "SequenceTagger": "rnnplay.model.heads",
    "CharRNN": "rnnplay.model.heads",
    "Sampler": "rnnplay.model.sampler",
    "CELL_NAMES": "rnnplay.model.kinds",
    "cell_kind": "rnnplay.model.kinds",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rnnplay.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
