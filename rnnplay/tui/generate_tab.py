"""The Generate tab: sample from the live weights or an opened checkpoint, text as it comes.

Sampling runs in a thread worker on a :class:`~rnnplay.model.Sampler` snapshot (taken between two
training steps), so the run keeps going. The worker posts the whole text so far every ~50 ms as a
latest-state message (never one message per character). With a hidden unit chosen, each
character's background shows that unit's activation while the model read it.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.validation import Integer, Number
from textual.widgets import Button, Checkbox, Input, Label, Static

from rnnplay.commands.sample import unescape
from rnnplay.tui.messages import GenerateProgress
from rnnplay.tui.widgets import append_runs, diverging_styles, fmt_rate, styled_level, theme_color

TEMP_MIN, TEMP_MAX = 0.05, 3.0
SAMPLES_MAX = 64
SEPARATOR = "\n───\n"  # between samples
POST_EVERY_S = 0.05


def take_sampler(source: Any) -> Any:
    """A Sampler snapshot of ``source`` (a trainer or an opened checkpoint), between two steps."""
    return source.sampler()


class GeneratePane(Vertical):
    """Everything inside the Generate tab."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._run_id = 0
        self._text = ""
        self._acts: list[float] | None = None
        self._stop = threading.Event()
        self._prime = ""
        self._samples = 1
        self._legend = ""
        self.source: Any = None
        self.source_label = "nothing to sample from yet: train (F5) or open a checkpoint (ctrl+o)"

    def compose(self) -> ComposeResult:
        with Horizontal(id="gen-body"):
            with VerticalScroll(id="gen-form", classes="side"):
                yield Label("source", classes="section")
                yield Static(self.source_label, id="gen-source")
                yield Label("prompt", classes="section")
                yield Input(placeholder="prime text (empty: a newline)",
                            compact=True, id="gen-prime")
                with Grid(id="gen-params"):
                    yield Label("temp", classes="field-label")
                    yield Input("0.8", type="number", compact=True, id="gen-temp",
                                validators=[Number(minimum=TEMP_MIN, maximum=TEMP_MAX)])
                    yield Label("seed", classes="field-label")
                    yield Input("0", type="integer", compact=True, id="gen-seed",
                                validators=[Integer(minimum=0, maximum=2**63 - 1)])
                    yield Label("length", classes="field-label")
                    yield Input("600", type="integer", compact=True, id="gen-length",
                                validators=[Integer(minimum=1, maximum=20_000)])
                    yield Label("top-k", classes="field-label")
                    yield Input("", type="integer", compact=True, id="gen-topk", placeholder="off",
                                valid_empty=True, validators=[Integer(minimum=1, maximum=1_000_000)])
                    yield Label("samples", classes="field-label")
                    yield Input("1", type="integer", compact=True, id="gen-samples",
                                validators=[Integer(minimum=1, maximum=SAMPLES_MAX)])
                    yield Label("stop at", classes="field-label")
                    yield Input("", compact=True, id="gen-stop", placeholder="off")
                yield Checkbox("greedy (always the likeliest)", compact=True, id="gen-greedy")
                yield Label("colour by a unit of h", classes="section")  # h, also for the LSTM (not c)
                with Grid(id="gen-unit"):
                    yield Label("layer", classes="field-label")
                    yield Input("", type="integer", compact=True, id="gen-layer", placeholder="off",
                                valid_empty=True, validators=[Integer(minimum=1, maximum=64)])
                    yield Label("unit", classes="field-label")
                    yield Input("", type="integer", compact=True, id="gen-unit-index", placeholder="0",
                                valid_empty=True, validators=[Integer(minimum=0, maximum=1_000_000)])
                yield Button("Generate  F9", id="gen-go", compact=True, variant="primary")
                yield Static("[ ] temperature · ctrl+r new seed", id="gen-keys", classes="hint")
            with Vertical(id="gen-out"):
                with VerticalScroll(id="gen-scroll"):
                    yield Static("", id="gen-text")
                yield Static("", id="gen-status", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#gen-scroll").border_title = "generated text"
        self.query_one("#gen-stop").tooltip = "each sample ends just before this text; \\n is a newline, \\t a tab"

    def on_unmount(self) -> None:
        self._stop.set()  # a generation in flight ends with the app

    # ---- controls --------------------------------------------------------------------------

    def set_source(self, source: Any, label: str) -> None:
        self.source, self.source_label = source, label
        self.query_one("#gen-source", Static).update(label)

    def nudge_temperature(self, delta: float) -> None:
        field = self.query_one("#gen-temp", Input)
        try:
            t = float(field.value)
        except ValueError:
            t = 0.8
        t = round(min(TEMP_MAX, max(TEMP_MIN, t + delta)), 2)
        field.value = f"{t:g}"

    def random_seed(self) -> None:
        self.query_one("#gen-seed", Input).value = str(random.randrange(1_000_000))

    def _read(self) -> dict | str:
        def num(id_: str, kind, default=None):
            text = self.query_one(id_, Input).value.strip()
            if not text:
                return default
            return kind(text)

        try:
            opts = {
                "prime": self.query_one("#gen-prime", Input).value,
                "temperature": num("#gen-temp", float, 0.8),
                "seed": num("#gen-seed", int, 0),
                "length": num("#gen-length", int, 600),
                "top_k": num("#gen-topk", int),
                "greedy": self.query_one("#gen-greedy", Checkbox).value,
                "layer": num("#gen-layer", int),
                "unit": num("#gen-unit-index", int, 0),
                "samples": num("#gen-samples", int, 1),
                "stop": unescape(self.query_one("#gen-stop", Input).value) or None,
            }
        except ValueError as exc:
            return f"not a number: {exc}"
        if not 1 <= opts["samples"] <= SAMPLES_MAX:
            return f"samples must be from 1 to {SAMPLES_MAX}"
        if opts["samples"] > 1 and opts["layer"]:
            return "colouring by a hidden unit shows one sample: set samples to 1 or clear the layer"
        if not TEMP_MIN <= opts["temperature"] <= TEMP_MAX:
            return f"temperature must be from {TEMP_MIN} to {TEMP_MAX}"
        if opts["length"] < 1 or opts["length"] > 20_000:
            return "length must be from 1 to 20000"
        if opts["top_k"] is not None and opts["top_k"] < 1:
            return "top-k must be at least 1 (empty: off)"
        return opts

    @on(Button.Pressed, "#gen-go")
    def generate(self) -> None:
        """F9 and the Generate button: start, or say why it cannot."""
        error = self.start()
        if error:
            self.notify(error, severity="warning", timeout=5)

    def start(self) -> str | None:
        """Start generating; returns an error message for the user instead, if any."""
        if self.source is None:
            return "nothing to sample from yet: start training (F5) or open a checkpoint (ctrl+o)"
        opts = self._read()
        if isinstance(opts, str):
            return opts
        self._stop.set()
        self._stop = threading.Event()
        self._run_id += 1
        self._text, self._acts = "", [] if opts["layer"] else None
        self._prime = opts["prime"] or ""
        self._samples = opts["samples"]
        self._legend = (f"colour: layer {opts['layer']} unit {opts['unit'] or 0}, "
                        "blue −1 … 0 … +1 red") if opts["layer"] else ""
        self.query_one("#gen-status", Static).update("generating…")
        self._generate(self.source, opts, self._run_id, self._stop)
        return None

    # ---- the worker ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, source: Any, opts: dict, run_id: int, stop: threading.Event) -> None:
        try:
            self._sample(source, opts, run_id, stop)
        except Exception as exc:  # shown in the pane; the app stays up
            self.post_message(GenerateProgress(run_id, self._text, self._acts, True, error=str(exc)))

    def _sample(self, source: Any, opts: dict, run_id: int, stop: threading.Event) -> None:
        import torch

        sampler = take_sampler(source)
        vocab = source.vocab
        prime = opts["prime"] or "\n"
        unknown = vocab.unknown(prime)
        if unknown:
            prime = "".join(c for c in prime if c in vocab) or vocab.chars[0]
            self.app.notify(f"dropped characters the model never saw: {''.join(unknown)!r}",
                            severity="warning")
        layer = opts["layer"]
        if layer is not None and not 1 <= layer <= sampler.num_layers:
            raise ValueError(f"layer must be from 1 to {sampler.num_layers}")
        unit = opts["unit"] or 0
        if layer is not None and unit >= sampler.hidden_size:
            raise ValueError(f"unit must be from 0 to {sampler.hidden_size - 1}")
        from rnnplay.model.cell import hidden_of

        stop_text = opts["stop"]
        if stop_text and vocab.unknown(stop_text):
            raise ValueError(f"the stop text has characters the model never saw: {''.join(vocab.unknown(stop_text))!r}")
        gen = torch.Generator(device=sampler.device).manual_seed(opts["seed"])
        if opts["samples"] > 1:
            self._sample_many(sampler, vocab, prime, opts, gen, run_id)
            return
        idx = vocab.encode(prime).long().to(sampler.device).unsqueeze(0)  # (1, T)
        chars, acts = vocab.chars, ([] if layer is not None else None)
        out: list[str] = []
        n_stop = len(stop_text) if stop_text else 0
        t0 = last = time.perf_counter()
        for nxt, h in sampler.stream(idx, opts["length"], temperature=opts["temperature"],
                                     top_k=opts["top_k"], greedy=opts["greedy"], generator=gen):
            out.append(chars[int(nxt[0])])
            if acts is not None:  # colour by h (for the LSTM, the state's first part: h, not c)
                acts.append(float(hidden_of(h)[layer - 1, 0, unit]))
            if n_stop and out[-1] == stop_text[-1] and "".join(out[-n_stop:]) == stop_text:
                del out[-n_stop:]  # the sample ends just before its stop text
                if acts is not None:
                    del acts[-n_stop:]
                break
            now = time.perf_counter()
            if now - last >= POST_EVERY_S:
                if stop.is_set():
                    return
                last = now
                self.post_message(GenerateProgress(run_id, "".join(out), acts and list(acts), False))
        rate = len(out) / max(1e-9, time.perf_counter() - t0)
        self.post_message(GenerateProgress(run_id, "".join(out), acts, True, chars_per_s=rate))

    def _sample_many(self, sampler: Any, vocab: Any, prime: str, opts: dict, gen: Any, run_id: int) -> None:
        """Several samples in one batch (rnnplay.generate.sample_texts), shown when all are done."""
        from rnnplay.generate.sampling import sample_texts

        t0 = time.perf_counter()
        texts = sample_texts(None, vocab, prime, opts["samples"], opts["length"], stop=opts["stop"],
                             temperature=opts["temperature"], top_k=opts["top_k"], greedy=opts["greedy"],
                             generator=gen, sampler=sampler)
        rate = sum(map(len, texts)) / max(1e-9, time.perf_counter() - t0)
        shown = (SEPARATOR + self._prime).join(texts)  # the first sample's prime is drawn by _render_text
        self.post_message(GenerateProgress(run_id, shown, None, True, chars_per_s=rate))

    def on_generate_progress(self, msg: GenerateProgress) -> None:
        if msg.run_id != self._run_id:
            return
        self._text, self._acts = msg.text, msg.activations
        self.query_one("#gen-text", Static).update(self._render_text(msg.text, msg.activations))
        self.query_one("#gen-scroll", VerticalScroll).scroll_end(animate=False)
        status = self.query_one("#gen-status", Static)
        if msg.error:
            status.update(Text(f"error: {msg.error}", style=f"bold {theme_color(self, 'error')}"))
            self.app.notify(msg.error, severity="error")
        elif msg.done:
            rate = f" · {fmt_rate(msg.chars_per_s)} chars/s" if msg.chars_per_s else ""
            legend = f" · {self._legend}" if self._legend else ""
            many = f"{self._samples} samples · " if self._samples > 1 else ""
            status.update(f"{many}{len(msg.text)} characters{rate}{legend}")
        else:
            status.update(f"generating… {len(msg.text)} characters")

    def _render_text(self, text: str, acts: list[float] | None) -> Text:
        out = Text()
        if self._prime:
            out.append(self._prime, style=Style(dim=True, underline=True))
        if not acts:
            out.append(text)
            return out
        pos, neg = _activation_styles(self)
        append_runs(out, [("⏎\n" if ch == "\n" else ch, styled_level(max(-1.0, min(1.0, a)), pos, neg))
                          for ch, a in zip(text, acts)])
        return out


def _activation_styles(pane: GeneratePane) -> tuple[tuple[Style, ...], tuple[Style, ...]]:
    """Background styles from the screen colour towards red (positive) / blue (negative)."""
    base = Style(bgcolor=theme_color(pane, "background", "#121212"))
    return diverging_styles(Style(color="#d0443e"), Style(color="#3b78d0"), base, levels=8,
                            background=True, strength=0.8)
