"""The from-scratch RNN family of the seed article, with the seed's tanh cell, the GRU and the LSTM."""

from rnnplay.model.birnn import BidirectionalRNN
from rnnplay.model.gru_cell import GRUCell
from rnnplay.model.heads import CharRNN, SequenceClassifier, SequenceTagger
from rnnplay.model.kinds import CELL_NAMES, cell_kind
from rnnplay.model.lstm_cell import LSTMCell
from rnnplay.model.rnn import RNN
from rnnplay.model.sampler import Sampler
from rnnplay.model.tanh_cell import RNNCell

__all__ = ["RNNCell", "GRUCell", "LSTMCell", "RNN", "BidirectionalRNN", "SequenceClassifier", "SequenceTagger",
           "CharRNN", "Sampler", "CELL_NAMES", "cell_kind"]
