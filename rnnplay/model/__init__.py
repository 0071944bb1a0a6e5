"""The from-scratch RNN family of the seed article."""

from rnnplay.model.cell import RNNCell
from rnnplay.model.heads import CharRNN, SequenceClassifier, SequenceTagger
from rnnplay.model.rnn import RNN, BidirectionalRNN
from rnnplay.model.sampler import Sampler

__all__ = ["RNNCell", "RNN", "BidirectionalRNN", "SequenceClassifier", "SequenceTagger", "CharRNN", "Sampler"]
