"""One-step inference for CharRNN: no autograd, preallocated buffers, the state carried.

A :class:`Sampler` takes a snapshot of a CharRNN's weights when it is built (a few hundred KB),
so it can sample from a model that keeps training in another thread. The snapshot folds what
can be folded ahead of time, so that a step is a short chain of ``out=`` ops; what folds is the
cell kind's business (its ``sampler_weights`` and ``stepper``, rnnplay/model/<kind>_cell.py).
For the tanh cell:

* layer 1's input projection of every character: ``E @ Wxh1^T + b_xh1 + b_hh1`` is a (V, H) table,
  so the embedding and layer 1's input matmul become one row lookup;
* each later layer's two matmuls become one: the state lives in one (B, L*H) buffer, layer by
  layer, so ``[h_{l-1} | h_l]`` is a (B, 2H) view and ``[Wxh_l^T ; Whh_l^T]`` one (2H, H) matrix;
* both biases of each layer into one vector.

Here, for every kind: for a scalar temperature, 1/T into the head's weights and its bias into the
pre-drawn Gumbel noise (see ``choose``). Per character at batch 1 with 3 tanh layers: 9 small ops
(lookup, 3 matmuls, 3 tanh, head, argmax).

A state is what the model's forward takes and returns: (L, B, H), or for the LSTM the pair (h, c).
The working state is one (B, L*H) buffer per part; the top layer's h is the last H columns of the
first buffer.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rnnplay.model.cell import State, state_from_parts, state_parts


class Sampler:
    """Autoregressive sampling from a snapshot of a CharRNN (see the module docstring)."""

    def __init__(self, model) -> None:
        rnn = model.rnn
        self.kind = rnn.kind
        with torch.no_grad():
            self.weights = self.kind.sampler_weights(rnn.cells, model.embedding.weight.detach())
            self.fcT = model.fc.weight.t().contiguous()  # (H, V)
            self.fc_b = model.fc.bias.detach().clone()  # (V,)
        self.num_layers = len(rnn.cells)
        self.hidden_size = model.hidden_size
        self.vocab_size = model.vocab_size
        self.device = self.fcT.device
        self.dtype = self.fcT.dtype

    # ---- the recurrence ---------------------------------------------------------------------

    def new_state(self, batch: int) -> State:
        """Zeros: the state before any character, (L, B, H) or the LSTM's pair of them."""
        parts = [torch.zeros(self.num_layers, batch, self.hidden_size, device=self.device, dtype=self.dtype)
                 for _ in range(self.kind.n_state)]
        return state_from_parts(parts, self.kind.n_state)

    def _flat_state(self, h0: State | None, batch: int) -> tuple[torch.Tensor, ...]:
        """The working state, one (B, L*H) buffer per part, layer by layer along the last dim;
        from h0 (the model's state type) or zeros."""
        flat = tuple(torch.zeros(batch, self.num_layers * self.hidden_size, device=self.device, dtype=self.dtype)
                     for _ in range(self.kind.n_state))
        if h0 is not None:
            parts = state_parts(h0)
            if len(parts) != len(flat):
                raise ValueError(f"h0: a {self.kind.name} state has {len(flat)} part(s), got {len(parts)}")
            for S, part in zip(flat, parts):
                self._as_layers(S).copy_(part)
        return flat

    def _as_layers(self, S: torch.Tensor) -> torch.Tensor:
        """(B, L*H) -> an (L, B, H) view of the same memory."""
        return S.view(S.shape[0], self.num_layers, self.hidden_size).transpose(0, 1)

    def _state_view(self, flat: tuple[torch.Tensor, ...]) -> State:
        """The working state as the model's state type, views of the same memory."""
        return state_from_parts([self._as_layers(S) for S in flat], self.kind.n_state)

    def _stepper(self, flat: tuple[torch.Tensor, ...]):
        """A closure feeding one character per row (idx (B,) long) into the working state, in place."""
        return self.kind.stepper(self.weights, flat, self.hidden_size, self.num_layers)

    def _logits(self, flat: tuple[torch.Tensor, ...], out: torch.Tensor | None = None) -> torch.Tensor:
        top = flat[0][:, (self.num_layers - 1) * self.hidden_size:]  # (B, H): the top layer's h
        if out is None:
            return torch.addmm(self.fc_b, top, self.fcT)  # (B, V)
        return torch.addmm(self.fc_b, top, self.fcT, out=out)

    @torch.no_grad()
    def step(self, idx: torch.Tensor, h: State, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Feed one character per row. idx (B,) long; the state h ((L, B, H) or the LSTM's (h, c))
        is updated in place -> logits (B, V)."""
        flat = self._flat_state(h, idx.shape[0])
        self._stepper(flat)(idx)
        for part, S in zip(state_parts(h), flat):
            part.copy_(self._as_layers(S))
        return self._logits(flat, logits)

    def _read(self, prime: torch.Tensor, h0: State | None) -> tuple[tuple[torch.Tensor, ...], object]:
        """Read a prefix (B, T) into a fresh working state -> (flat state, its stepper)."""
        if prime.dim() != 2 or prime.shape[1] < 1:
            raise ValueError(f"prime: expected shape (B, T) with T >= 1, got {tuple(prime.shape)}")
        flat = self._flat_state(h0, prime.shape[0])
        step = self._stepper(flat)
        for idx in prime.to(self.device).t():  # (B,) per step
            step(idx)
        return flat, step

    @torch.no_grad()
    def prime(self, prime: torch.Tensor, h0: State | None = None) -> tuple[torch.Tensor, State]:
        """Read a prefix. prime (B, T) long, T >= 1 -> (logits after the last character (B, V), state)."""
        flat, _ = self._read(prime, h0)
        return self._logits(flat), self._state_view(flat)

    # ---- choosing the next character --------------------------------------------------------
    #
    # Sampling uses the Gumbel-max trick: argmax(logits / T + G) with G = -log(-log(U)) is a draw
    # from softmax(logits / T). The noise is drawn in chunks of steps from ``generator``, so a
    # step costs one fused add and one argmax instead of softmax + multinomial (3x cheaper at
    # batch 1), and the same seed gives the same text.

    _CHUNK = 256

    @staticmethod
    def _noise(steps: int, B: int, V: int, generator, device, dtype) -> torch.Tensor:
        u = torch.rand(steps, B, V, generator=generator, device=device, dtype=dtype)  # (S, B, V)
        return u.clamp_(min=torch.finfo(dtype).tiny).log_().neg_().log_().neg_()

    @staticmethod
    def _pick(
        logits: torch.Tensor,
        inv_temp: float | torch.Tensor,
        noise: torch.Tensor,
        top_k: int | None,
        greedy: bool,
        out: torch.Tensor,
        buf: torch.Tensor,
    ) -> torch.Tensor:
        """Write the next indices (B,) into ``out``. inv_temp: float or (B, 1); noise (B, V)."""
        if greedy:
            return torch.argmax(logits, dim=-1, out=out)
        if top_k is not None and top_k < logits.shape[-1]:
            torch.mul(logits, inv_temp, out=buf)  # (B, V)
            kth = torch.topk(buf, top_k, dim=-1).values[:, -1:]  # (B, 1)
            buf.masked_fill_(buf < kth, float("-inf")).add_(noise)
        elif isinstance(inv_temp, torch.Tensor):
            torch.addcmul(noise, logits, inv_temp, out=buf)
        else:
            torch.add(noise, logits, alpha=inv_temp, out=buf)
        return torch.argmax(buf, dim=-1, out=out)

    @staticmethod
    def _inv_temp(temperature: float | torch.Tensor, logits: torch.Tensor) -> float | torch.Tensor:
        if isinstance(temperature, torch.Tensor):
            return temperature.to(logits).reshape(-1, 1).reciprocal()  # (B, 1)
        return 1.0 / temperature

    @classmethod
    def choose(
        cls,
        logits: torch.Tensor,
        temperature: float | torch.Tensor = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """logits (B, V) -> next indices (B,), one draw (temperature: float or (B,) tensor, > 0)."""
        _check_sampling_args(1, temperature, top_k)
        B, V = logits.shape
        noise = cls._noise(1, B, V, generator, logits.device, logits.dtype)[0]  # (B, V)
        out = torch.empty(B, dtype=torch.long, device=logits.device)
        return cls._pick(logits, cls._inv_temp(temperature, logits), noise, top_k, greedy, out,
                         torch.empty_like(logits))

    def _picker(self, flat: tuple[torch.Tensor, ...], temperature: float | torch.Tensor, top_k: int | None, greedy: bool):
        """(pick(noise_row, out), noise_bias): pick writes the next indices (B,) drawn from the state.

        For a scalar temperature without top-k the head is pre-scaled by 1/T and its scaled bias is
        added to the whole noise chunk (noise_bias), so a pick is one addmm and one argmax.
        """
        S = flat[0]
        B = S.shape[0]
        top = S[:, (self.num_layers - 1) * self.hidden_size:]  # (B, H): the top layer's h
        buf = torch.empty(B, self.vocab_size, device=self.device, dtype=self.dtype)  # (B, V)
        argmax = torch.argmax
        fc_b = self.fc_b

        def head_for(scale: float, out: torch.Tensor):
            """head(bias): out (B, V) = bias + top @ (scale * W_fc)^T; bias (B, V), or (V,) at batch 1."""
            if B == 1:  # matrix-vector on W_fc as stored, (V, H): faster than addmm at one row
                W, top_v, out_v = (self.fcT.t() * scale).contiguous(), top[0], out[0]
                return lambda bias: torch.addmv(bias, W, top_v, out=out_v)
            W = self.fcT * scale  # (H, V)
            return lambda bias: torch.addmm(bias, top, W, out=out)

        if greedy:
            head = head_for(1.0, buf)

            def pick_greedy(noise, out):
                head(fc_b)
                argmax(buf, dim=-1, out=out)
            return pick_greedy, None
        if top_k is None and not isinstance(temperature, torch.Tensor):
            head = head_for(1.0 / temperature, buf)

            def pick_fast(noise, out):  # noise already holds G + b / T
                head(noise)
                argmax(buf, dim=-1, out=out)
            return pick_fast, fc_b * (1.0 / temperature)
        logits = torch.empty_like(buf)
        inv_temp, choose, head = self._inv_temp(temperature, logits), self._pick, head_for(1.0, logits)

        def pick_general(noise, out):
            head(fc_b)
            choose(logits, inv_temp, noise, top_k, False, out, buf)
        return pick_general, None

    def _run(self, flat, step, length, temperature, top_k, greedy, generator, out, feed_last) -> Iterator[torch.Tensor]:
        """The sampling loop: pick from the state, feed the pick back (not after the last one unless
        feed_last), yield the (B,) indices. With ``out`` (N, B) the picks are written there."""
        B = flat[0].shape[0]
        pick, noise_bias = self._picker(flat, temperature, top_k, greedy)
        nxt = torch.empty(B, dtype=torch.long, device=self.device)
        for start in range(0, length, self._CHUNK):
            steps = min(self._CHUNK, length - start)
            noise = None
            if not greedy:
                noise = self._noise(steps, B, self.vocab_size, generator, self.device, self.dtype)  # (S, B, V)
                if noise_bias is not None:
                    noise.add_(noise_bias)
            # rows (B, V); at batch 1 (V,), what the head's matrix-vector product adds to
            noise_rows = [None] * steps if noise is None else (noise[:, 0] if B == 1 else noise).unbind(0)
            slots = [nxt] * steps if out is None else out[start:start + steps].unbind(0)
            for i in range(steps):
                slot = slots[i]
                pick(noise_rows[i], slot)
                if feed_last or start + i + 1 < length:
                    step(slot)
                yield slot

    @torch.no_grad()
    def stream(
        self,
        prime: torch.Tensor,
        length: int,
        temperature: float | torch.Tensor = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        h0: State | None = None,
    ) -> Iterator[tuple[torch.Tensor, State]]:
        """Yield ``(next indices (B,), state after reading them)`` ``length`` times; the state is
        (L, B, H), or for the LSTM the pair (h, c) of them (``cell.hidden_of`` gives h).

        The state yielded with a character is the one after that character has been fed back,
        i.e. the activations the model had while *reading* it (what a per-character colouring
        wants). The tensors are reused between steps: copy them to keep them. ``generate`` and
        ``stream`` give the same characters for the same generator state.
        """
        _check_sampling_args(length, temperature, top_k)
        flat, step = self._read(prime, h0)
        h = self._state_view(flat)  # (L, B, H) views of the working state
        for nxt in self._run(flat, step, length, temperature, top_k, greedy, generator, None, True):
            yield nxt, h

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
        """prime (B, T) -> (B, length) new indices. One step per new character."""
        _check_sampling_args(length, temperature, top_k)
        flat, step = self._read(prime, h0)
        out = torch.empty(length, flat[0].shape[0], dtype=torch.long, device=self.device)  # (N, B) time-major
        for _ in self._run(flat, step, length, temperature, top_k, greedy, generator, out, False):
            pass
        return out.t()  # (B, N)


def _check_sampling_args(length: int, temperature: float | torch.Tensor, top_k: int | None) -> None:
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if isinstance(temperature, torch.Tensor):
        if not bool((temperature > 0).all()):
            raise ValueError("temperature must be > 0 for every row")
    elif not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
