"""Generation and inspection on top of a trained CharRNN: streamed scoring, several samples with a
stop text, beam search, and the memory view (saliency).

Everything here uses only the model's public ``forward(idx, state)`` and its Sampler (and, for the
memory view, its ``embedding``, ``rnn`` and ``fc`` parts), and treats the state opaquely (a tensor
or a tuple of tensors), so it works for every cell. No Textual: the app's views call these functions.
"""

from rnnplay.generate.beam import Hypothesis, beam_search
from rnnplay.generate.cowrite import CoWriter, Proposal
from rnnplay.generate.memory import Saliency, saliency
from rnnplay.generate.sampling import sample_texts
from rnnplay.generate.score import Score, StreamScorer, score_text

__all__ = ["CoWriter", "Proposal", "Score", "StreamScorer", "score_text", "sample_texts", "Hypothesis", "beam_search",
           "Saliency", "saliency"]
