"""rnnplay: a terminal playground for recurrent neural networks.

``from rnnplay import RNN`` works as usual, but importing :mod:`rnnplay` itself loads neither
torch nor textual: the model classes are loaded on first use, so ``rnnplay --help`` and the
terminal app's first frame stay fast.
"""

from __future__ import annotations

import warnings

__version__ = "0.1.0"

# torch warns "Failed to initialize NumPy" at import when NumPy is absent (a fresh install: rnnplay
# never needs NumPy). Only that message is silenced; every other warning stays as it is.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)

_MODEL_NAMES = ("RNNCell", "GRUCell", "LSTMCell", "RNN", "BidirectionalRNN", "SequenceClassifier", "SequenceTagger", "CharRNN")

__all__ = ["__version__", *_MODEL_NAMES]


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from rnnplay import model

        return getattr(model, name)
    raise AttributeError(f"module 'rnnplay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
