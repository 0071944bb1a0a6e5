"""The seed's architecture variants: classifier (many-to-one), tagger (many-to-many), CharRNN."""

from __future__ import annotations

import torch
from torch import nn

from rnnplay.model import fast
from rnnplay.model._checks import check_shape
from rnnplay.model.birnn import BidirectionalRNN
from rnnplay.model.cell import State, hidden_of
from rnnplay.model.rnn import RNN, Impl


class SequenceClassifier(nn.Module):
    """RNN -> last layer's final state -> dropout -> Linear: (B, T, I) -> (B, C).

    The default size (10, 64, 2) with the tanh cell has exactly 13,314 parameters, as in the seed.
    ``cell`` is any registered kind (rnnplay.model.kinds): "tanh" (default), "gru", "lstm".
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        num_layers: int = 2,
        dropout: float = 0.2,
        impl: Impl = "auto",
        cell: str = "tanh",
    ) -> None:
        super().__init__()
        self.rnn = RNN(input_size, hidden_size, num_layers, dropout=dropout, impl=impl, cell=cell)
        self.fc = nn.Linear(hidden_size, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, I) -> logits (B, C)."""
        if self.rnn.impl == "reference":
            _, h_final = self.rnn(x)  # (L, B, H)
        else:  # time-major call: the unused outputs are not copied back to batch-first
            check_shape("x", x, (None, None, self.rnn.input_size), "(B, T, input_size)")
            _, h_final = self.rnn.forward_time_major(x.transpose(0, 1))  # (L, B, H)
        h_last = self.dropout(hidden_of(h_final)[-1])  # (B, H): last layer's h
        return self.fc(h_last)  # (B, C)


class SequenceTagger(nn.Module):
    """RNN (or BidirectionalRNN) -> Linear at every step: (B, T, I) -> (B, T, num_tags)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_tags: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        impl: Impl = "auto",
        cell: str = "tanh",
    ) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        rnn_cls = BidirectionalRNN if bidirectional else RNN
        self.rnn = rnn_cls(input_size, hidden_size, num_layers, dropout=dropout, impl=impl, cell=cell)
        self.fc = nn.Linear(hidden_size * (2 if bidirectional else 1), num_tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, I) -> per-step logits (B, T, num_tags)."""
        outputs, _ = self.rnn(x)  # (B, T, H) or (B, T, 2H)
        return self.fc(outputs)  # (B, T, num_tags)


class CharRNN(nn.Module):
    """Character-level language model: Embedding -> multi-layer RNN -> Linear to vocabulary logits.

    ``forward(idx, h0=None)`` maps indices (B, T) to ``(logits (B, T, V), h_n)``; the state h_n is
    (L, B, H), or for ``cell="lstm"`` the pair (h, c) of them. ``cell`` names a registered kind
    (rnnplay.model.kinds); ``describe()`` gives what a checkpoint records to rebuild the model.
    ``generate`` samples autoregressively, carrying the hidden state so that each new character
    costs one step (the prefix is read once, never re-run).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 256,
        num_layers: int = 3,
        embed_size: int | None = None,
        dropout: float = 0.0,
        impl: Impl = "auto",
        cell: str = "tanh",
    ) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        embed_size = hidden_size if embed_size is None else embed_size
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embed_size = embed_size
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = RNN(embed_size, hidden_size, num_layers, dropout=dropout, impl=impl, cell=cell)
        self.fc = nn.Linear(hidden_size, vocab_size)

    @property
    def cell(self) -> str:
        """The cell kind's name ("tanh", "gru", "lstm", ...)."""
        return self.rnn.cell

    def describe(self) -> dict:
        """What rebuilds this model: ``CharRNN(**model.describe())`` (a checkpoint's model description)."""
        return {"vocab_size": self.vocab_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "embed_size": self.embed_size, "cell": self.cell}

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        """Zeros in this model's state type: (L, B, H), or the LSTM's pair of them."""
        return self.rnn.init_state(batch, device, dtype)

    def forward(self, idx: torch.Tensor, h0: State | None = None) -> tuple[torch.Tensor, State]:
        """idx (B, T) long, h0 state or None -> (logits (B, T, V), h_n (L, B, H) or (h, c))."""
        check_shape("idx", idx, (None, None), "(B, T) of character indices")
        self.rnn.check_state(h0, idx.shape[0])
        if self.rnn.impl == "reference":
            emb = self.embedding(idx)  # (B, T, E)
            out, h_n = self.rnn(emb, h0)  # (B, T, H)
            return self.fc(out), h_n  # (B, T, V)
        # time-major skips two transposes of (B, T, H); the embedding is folded into layer 1
        out, h_n = self.rnn.forward_time_major(idx.t(), h0, embedding=self.embedding.weight)  # (T, B, H)
        logits = fast.linear(self.fc, out)  # (T, B, V)
        return logits.transpose(0, 1), h_n  # (B, T, V)

    @torch.no_grad()
    def generate(
        self,
        prime: torch.Tensor,
        length: int,
        temperature: float | torch.Tensor = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        h0: State | None = None,
    ) -> torch.Tensor:
        """Sample ``length`` new indices after ``prime``.

        prime: (T,) or (B, T) long, T >= 1. temperature: > 0, a float or a (B,) tensor (one per
        row, so several temperatures sample in one batch). top_k keeps the k most likely
        characters; greedy takes the most likely one. Returns (length,) or (B, length).
        """
        from rnnplay.model.sampler import Sampler

        squeeze = prime.dim() == 1
        sampler = Sampler(self)
        out = sampler.generate(prime.unsqueeze(0) if squeeze else prime, length, temperature,
                               top_k=top_k, greedy=greedy, generator=generator, h0=h0)
        return out.squeeze(0) if squeeze else out
