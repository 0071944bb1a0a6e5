"""Generation and inspection on top of a trained CharRNN: streamed scoring, beam search, saliency.

Everything here uses only the model's public ``forward(idx, state)`` (and, for saliency, its
``embedding``, ``rnn`` and ``fc`` parts), so it works for any cell the model is built with.
No Textual: the app's views call these functions.
"""

from rnnplay.generate.score import Score, StreamScorer, score_text

__all__ = ["Score", "StreamScorer", "score_text"]
