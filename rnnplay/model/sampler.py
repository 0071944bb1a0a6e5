"""One-step inference for CharRNN: no autograd, preallocated buffers, the hidden state carried.

A :class:`Sampler` takes a snapshot of a CharRNN's weights when it is built (a few hundred KB),
so it can sample from a model that keeps training in another thread. The snapshot folds what
can be folded ahead of time:

* layer 1's input projection of every character: ``E @ Wxh1^T + b_xh1 + b_hh1`` is a (V, H) table,
  so the embedding and layer 1's input matmul become one row lookup;
* both biases of each later layer into one vector;
* transposed, contiguous weight matrices, so each step is a chain of ``addmm(..., out=)``.
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
            self.WhhT = [c.Whh.weight.t().contiguous() for c in cells]  # L x (H, H)
            self.WxhT = [None] + [c.Wxh.weight.t().contiguous() for c in cells[1:]]  # (H, H)
            zero = torch.zeros_like(c0.Whh.weight[0])
            self.bias = [None] + [
                (c.Wxh.bias + c.Whh.bias) if c.bias else zero for c in cells[1:]
            ]  # (H,)
            self.fcT = model.fc.weight.t().contiguous()  # (H, V)
            self.fc_b = model.fc.bias.detach().clone()  # (V,)
        self.num_layers = len(cells)
        self.hidden_size = model.hidden_size
        self.vocab_size = model.vocab_size
        self.device = self.table.device
        self.dtype = self.table.dtype

    # ---- the recurrence ---------------------------------------------------------------------

    def new_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(self.num_layers, batch, self.hidden_size, device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def step(self, idx: torch.Tensor, h: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Feed one character per row. idx (B,) long; h (L, B, H) is updated in place -> logits (B, V)."""
        return self._step(idx, h.unbind(0), logits)

    def _step(self, idx: torch.Tensor, hs: tuple[torch.Tensor, ...], logits: torch.Tensor | None) -> torch.Tensor:
        """``step`` on the per-layer views ``hs`` of the state (indexing h[l] costs a dispatch)."""
        tmp = torch.index_select(self.table, 0, idx)  # (B, H): layer 1's projected input
        tmp.addmm_(hs[0], self.WhhT[0])
        torch.tanh(tmp, out=hs[0])
        for layer in range(1, self.num_layers):
            torch.addmm(self.bias[layer], hs[layer - 1], self.WxhT[layer], out=tmp)  # (B, H)
            tmp.addmm_(hs[layer], self.WhhT[layer])
            torch.tanh(tmp, out=hs[layer])
        if logits is None:
            return torch.addmm(self.fc_b, hs[-1], self.fcT)  # (B, V)
        return torch.addmm(self.fc_b, hs[-1], self.fcT, out=logits)

    @torch.no_grad()
    def prime(self, prime: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Read a prefix. prime (B, T) long, T >= 1 -> (logits after the last character (B, V), h (L, B, H))."""
        if prime.dim() != 2 or prime.shape[1] < 1:
            raise ValueError(f"prime: expected shape (B, T) with T >= 1, got {tuple(prime.shape)}")
        B, T = prime.shape
        h = self.new_state(B) if h0 is None else h0.to(self.dtype).clone()  # (L, B, H)
        prime = prime.to(self.device)
        logits = torch.empty(B, self.vocab_size, device=self.device, dtype=self.dtype)
        hs = h.unbind(0)
        for idx in prime.t():  # (B,) per step
            self._step(idx, hs, logits)
        return logits, h

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
        logits, h = self.prime(prime, h0)
        hs = h.unbind(0)  # L x (B, H) views
        B, V = logits.shape
        inv_temp = self._inv_temp(temperature, logits)
        buf = torch.empty_like(logits)
        nxt = torch.empty(B, dtype=torch.long, device=self.device)
        for start in range(0, length, self._CHUNK):
            steps = min(self._CHUNK, length - start)
            noise = None if greedy else self._noise(steps, B, V, generator, self.device, self.dtype)
            for i in range(steps):
                self._pick(logits, inv_temp, None if greedy else noise[i], top_k, greedy, nxt, buf)
                self._step(nxt, hs, logits)
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
        logits, h = self.prime(prime, h0)
        hs = h.unbind(0)  # L x (B, H) views
        B, V = logits.shape
        inv_temp = self._inv_temp(temperature, logits)
        buf = torch.empty_like(logits)
        out = torch.empty(length, B, dtype=torch.long, device=self.device)  # (N, B) time-major
        for start in range(0, length, self._CHUNK):
            steps = min(self._CHUNK, length - start)
            noise = None if greedy else self._noise(steps, B, V, generator, self.device, self.dtype)
            for i in range(steps):
                t = start + i
                self._pick(logits, inv_temp, None if greedy else noise[i], top_k, greedy, out[t], buf)
                if t + 1 < length:
                    self._step(out[t], hs, logits)
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
