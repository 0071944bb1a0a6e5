"""One-step inference for CharRNN: no autograd, preallocated buffers, the hidden state carried.

A :class:`Sampler` takes a snapshot of a CharRNN's weights when it is built (a few hundred KB),
so it can sample from a model that keeps training in another thread. The snapshot folds what
can be folded ahead of time, so that a step is a short chain of ``out=`` ops:

* layer 1's input projection of every character: ``E @ Wxh1^T + b_xh1 + b_hh1`` is a (V, H) table,
  so the embedding and layer 1's input matmul become one row lookup;
* each later layer's two matmuls become one: the state lives in one (B, L*H) buffer, layer by
  layer, so ``[h_{l-1} | h_l]`` is a (B, 2H) view and ``[Wxh_l^T ; Whh_l^T]`` one (2H, H) matrix;
* both biases of each layer into one vector; for a scalar temperature, 1/T into the head's
  weights and its bias into the pre-drawn Gumbel noise (see ``choose``).

Per character at batch 1 with 3 layers: 9 small ops (lookup, 3 matmuls, 3 tanh, head, argmax).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class Sampler:
    """Autoregressive sampling from a snapshot of a CharRNN (see the module docstring)."""

    def __init__(self, model) -> None:
        with torch.no_grad():
            cells = model.rnn.cells
            c0 = cells[0]
            table = model.embedding.weight @ c0.Wxh.weight.t()  # (V, H)
            if c0.bias:
                table = table + (c0.Wxh.bias + c0.Whh.bias)
            self.table = table.contiguous()  # (V, H)
            self.Whh0T = c0.Whh.weight.t().contiguous()  # (H, H)
            # layer l >= 1: [h_{l-1} | h_l] @ Wcat_l + bias_l, Wcat_l = [Wxh_l^T ; Whh_l^T] (2H, H)
            self.Wcat = [torch.cat([c.Wxh.weight.t(), c.Whh.weight.t()], dim=0).contiguous() for c in cells[1:]]
            zero = torch.zeros_like(c0.Whh.weight[0])
            self.bias = [(c.Wxh.bias + c.Whh.bias) if c.bias else zero.clone() for c in cells[1:]]  # (H,)
            self.fcT = model.fc.weight.t().contiguous()  # (H, V)
            self.fc_b = model.fc.bias.detach().clone()  # (V,)
        self.num_layers = len(cells)
        self.hidden_size = model.hidden_size
        self.vocab_size = model.vocab_size
        self.device = self.table.device
        self.dtype = self.table.dtype

    # ---- the recurrence ---------------------------------------------------------------------

    def new_state(self, batch: int) -> torch.Tensor:
        """Zeros (L, B, H): the state before any character."""
        return torch.zeros(self.num_layers, batch, self.hidden_size, device=self.device, dtype=self.dtype)

    def _flat_state(self, h0: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The working state (B, L*H), layer by layer along the last dim; from h0 (L, B, H) or zeros."""
        S = torch.zeros(batch, self.num_layers * self.hidden_size, device=self.device, dtype=self.dtype)
        if h0 is not None:
            self._as_layers(S).copy_(h0)
        return S

    def _as_layers(self, S: torch.Tensor) -> torch.Tensor:
        """(B, L*H) -> an (L, B, H) view of the same memory."""
        return S.view(S.shape[0], self.num_layers, self.hidden_size).transpose(0, 1)

    def _stepper(self, S: torch.Tensor):
        """A closure feeding one character per row into the state S (B, L*H), in place."""
        H, L = self.hidden_size, self.num_layers
        tmp = torch.empty(S.shape[0], H, device=self.device, dtype=self.dtype)  # (B, H)
        table, Whh0T = self.table, self.Whh0T
        h = [S[:, k * H:(k + 1) * H] for k in range(L)]  # L x (B, H) views
        pairs = [(self.bias[k - 1], S[:, (k - 1) * H:(k + 1) * H], self.Wcat[k - 1], h[k]) for k in range(1, L)]
        index_select, addmm, tanh = torch.index_select, torch.addmm, torch.tanh

        def step(idx: torch.Tensor) -> None:  # idx (B,) long
            index_select(table, 0, idx, out=tmp)  # (B, H): layer 1's projected input
            tmp.addmm_(h[0], Whh0T)
            tanh(tmp, out=h[0])
            for bias, pair, W, h_k in pairs:
                addmm(bias, pair, W, out=tmp)  # (B, H): [h_{k-1} | h_k] @ [Wxh^T ; Whh^T]
                tanh(tmp, out=h_k)

        return step

    def _logits(self, S: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        top = S[:, (self.num_layers - 1) * self.hidden_size:]  # (B, H)
        if out is None:
            return torch.addmm(self.fc_b, top, self.fcT)  # (B, V)
        return torch.addmm(self.fc_b, top, self.fcT, out=out)

    @torch.no_grad()
    def step(self, idx: torch.Tensor, h: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Feed one character per row. idx (B,) long; h (L, B, H) is updated in place -> logits (B, V)."""
        S = self._flat_state(h, idx.shape[0])
        self._stepper(S)(idx)
        h.copy_(self._as_layers(S))
        return self._logits(S, logits)

    def _read(self, prime: torch.Tensor, h0: torch.Tensor | None) -> tuple[torch.Tensor, object]:
        """Read a prefix (B, T) into a fresh working state -> (S (B, L*H), its stepper)."""
        if prime.dim() != 2 or prime.shape[1] < 1:
            raise ValueError(f"prime: expected shape (B, T) with T >= 1, got {tuple(prime.shape)}")
        S = self._flat_state(None if h0 is None else h0.to(self.dtype), prime.shape[0])
        step = self._stepper(S)
        for idx in prime.to(self.device).t():  # (B,) per step
            step(idx)
        return S, step

    @torch.no_grad()
    def prime(self, prime: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Read a prefix. prime (B, T) long, T >= 1 -> (logits after the last character (B, V), h (L, B, H))."""
        S, _ = self._read(prime, h0)
        return self._logits(S), self._as_layers(S)

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

    def _picker(self, S: torch.Tensor, temperature: float | torch.Tensor, top_k: int | None, greedy: bool):
        """(pick(noise_row, out), noise_bias): pick writes the next indices (B,) drawn from the state S.

        For a scalar temperature without top-k the head is pre-scaled by 1/T and its scaled bias is
        added to the whole noise chunk (noise_bias), so a pick is one addmm and one argmax.
        """
        top = S[:, (self.num_layers - 1) * self.hidden_size:]  # (B, H)
        buf = torch.empty(S.shape[0], self.vocab_size, device=self.device, dtype=self.dtype)  # (B, V)
        addmm, argmax = torch.addmm, torch.argmax
        fc_b, fcT = self.fc_b, self.fcT
        if greedy:
            def pick_greedy(noise, out):
                addmm(fc_b, top, fcT, out=buf)
                argmax(buf, dim=-1, out=out)
            return pick_greedy, None
        if top_k is None and not isinstance(temperature, torch.Tensor):
            fcT_t = fcT * (1.0 / temperature)  # (H, V)

            def pick_fast(noise, out):  # noise already holds G + b / T
                addmm(noise, top, fcT_t, out=buf)
                argmax(buf, dim=-1, out=out)
            return pick_fast, fc_b * (1.0 / temperature)
        logits = torch.empty_like(buf)
        inv_temp, choose = self._inv_temp(temperature, logits), self._pick

        def pick_general(noise, out):
            addmm(fc_b, top, fcT, out=logits)
            choose(logits, inv_temp, noise, top_k, False, out, buf)
        return pick_general, None

    def _run(self, S, step, length, temperature, top_k, greedy, generator, out, feed_last) -> Iterator[torch.Tensor]:
        """The sampling loop: pick from S, feed the pick back (not after the last one unless
        feed_last), yield the (B,) indices. With ``out`` (N, B) the picks are written there."""
        B = S.shape[0]
        pick, noise_bias = self._picker(S, temperature, top_k, greedy)
        nxt = torch.empty(B, dtype=torch.long, device=self.device)
        for start in range(0, length, self._CHUNK):
            steps = min(self._CHUNK, length - start)
            noise = None
            if not greedy:
                noise = self._noise(steps, B, self.vocab_size, generator, self.device, self.dtype)  # (S, B, V)
                if noise_bias is not None:
                    noise.add_(noise_bias)
            noise_rows = [None] * steps if noise is None else noise.unbind(0)
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
        h0: torch.Tensor | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(next indices (B,), hidden state (L, B, H) after reading them)`` ``length`` times.

        The state yielded with a character is the one after that character has been fed back,
        i.e. the activations the model had while *reading* it (what a per-character colouring
        wants). The tensors are reused between steps: copy them to keep them. ``generate`` and
        ``stream`` give the same characters for the same generator state.
        """
        _check_sampling_args(length, temperature, top_k)
        S, step = self._read(prime, h0)
        h = self._as_layers(S)  # (L, B, H) view of the working state
        for nxt in self._run(S, step, length, temperature, top_k, greedy, generator, None, True):
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
        h0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """prime (B, T) -> (B, length) new indices. One step per new character."""
        _check_sampling_args(length, temperature, top_k)
        S, step = self._read(prime, h0)
        out = torch.empty(length, S.shape[0], dtype=torch.long, device=self.device)  # (N, B) time-major
        for _ in self._run(S, step, length, temperature, top_k, greedy, generator, out, False):
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
