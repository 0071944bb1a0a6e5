"""A live view of the run store for a UI: the run table and the selected runs' curves, read
incrementally. Plain Python (no Textual): the Runs tab calls :meth:`RunsFeed.poll` in a worker
thread about once a second and draws the :class:`FeedView` it returns.

Polling is cheap when nothing changed: SQLite's ``PRAGMA data_version`` tells whether another
connection committed since the last look; the table is re-read then (and every few seconds, since
"interrupted" depends on the clock). Curves are read from the last step seen on, and each is kept
decimated to at most :data:`MAX_POINTS` bucket means, so a redraw of ten 20,000-step runs draws a
few thousand points, not 200,000.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from rnnplay.runs.store import RunRow, RunStore, StoreUnavailable

MAX_POINTS = 1200
RELIST_S = 5.0


@dataclass(frozen=True)
class Curve:
    """One run's curves: ``train`` and ``val`` as (step, elapsed_s, loss) tuples, ``train``
    decimated to bucket means."""

    run_id: int
    train: tuple[tuple[float, float, float], ...]
    val: tuple[tuple[float, float, float], ...]
    steps: int  # the last step read


@dataclass(frozen=True)
class FeedView:
    """What the UI shows; ``error`` is a one-line reason when the store cannot be read."""

    runs: tuple[RunRow, ...] = ()
    curves: dict[int, Curve] = field(default_factory=dict)
    error: str | None = None
    version: int = 0  # changes with every new view


def decimate(points: list[tuple[float, float, float]], n: int = MAX_POINTS) -> list[tuple[float, float, float]]:
    """At most ``n`` points: means of consecutive buckets (the last point kept as it is)."""
    if len(points) <= n:
        return list(points)
    out = []
    size = len(points) / (n - 1)
    for i in range(n - 1):
        seg = points[int(i * size):max(int(i * size) + 1, int((i + 1) * size))]
        seg = [p for p in seg if p[2] is not None and math.isfinite(p[2])]
        if seg:
            k = len(seg)
            out.append((sum(p[0] for p in seg) / k, sum((p[1] or 0.0) for p in seg) / k, sum(p[2] for p in seg) / k))
    out.append(points[-1])
    return out


class RunsFeed:
    """Reads the store at ``path`` for a UI (see the module docstring). One thread calls poll()."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._store: RunStore | None = None
        self._selected: tuple[int, ...] = ()
        self._lock = threading.Lock()  # guards _selected (set from the UI thread)
        self._raw: dict[int, list[tuple[float, float, float]]] = {}
        self._val: dict[int, list[tuple[float, float, float]]] = {}
        self._last_step: dict[int, int] = {}
        self._curves: dict[int, Curve] = {}
        self._runs: tuple[RunRow, ...] = ()
        self._data_version: int | None = None
        self._listed_at = 0.0
        self._version = 0
        self._dirty = True
        self._error: str | None = None

    def select(self, run_ids: tuple[int, ...]) -> None:
        with self._lock:
            self._selected = tuple(run_ids)
            self._dirty = True

    def poll(self) -> FeedView | None:
        """A new view, or None when nothing changed since the last one (or the same error)."""
        if self.path is None:
            return self._view(error="the run store is turned off ($RNNPLAY_RUNS_DB=off)")
        try:
            if self._store is None:
                self._store = RunStore.open(self.path, readonly=True)
            store = self._store
            dv = store.conn.execute("PRAGMA data_version").fetchone()[0]
            with self._lock:
                selected, dirty = self._selected, self._dirty
                self._dirty = False
            now = time.monotonic()
            if dv == self._data_version and not dirty and now - self._listed_at < RELIST_S:
                return None
            self._data_version, self._listed_at = dv, now
            self._runs = tuple(store.runs())
            live = {r.id: r for r in self._runs}
            for rid in list(self._raw):
                if rid not in selected or rid not in live:
                    self._forget(rid)
            for rid in selected:
                if rid in live:
                    self._read(store, rid, live[rid])
            return self._view()
        except StoreUnavailable as exc:
            self._close()
            return self._view(error=str(exc))
        except Exception as exc:  # sqlite3.Error mid-read (a store replaced under us): try again later
            self._close()
            return self._view(error=f"the run store {self.path!r} could not be read ({exc})")

    def _read(self, store: RunStore, rid: int, row: RunRow) -> None:
        since = self._last_step.get(rid, 0)
        if rid in self._curves and row.steps <= since and row.status != "running":
            return
        new = store.metrics(rid, since_step=since)
        evals = store.evals(rid, since_step=max([int(v[0]) for v in self._val.get(rid, [])], default=0))
        raw = self._raw.setdefault(rid, [])
        raw.extend((m[0], m[1] or 0.0, m[2]) for m in new if m[2] is not None)
        val = self._val.setdefault(rid, [])
        val.extend((e[0], e[1] or 0.0, e[2]) for e in evals if e[2] is not None)
        if new:
            self._last_step[rid] = new[-1][0]
        if new or evals or rid not in self._curves:
            self._curves[rid] = Curve(rid, tuple(decimate(raw)), tuple(val), self._last_step.get(rid, 0))

    def _forget(self, rid: int) -> None:
        for d in (self._raw, self._val, self._last_step, self._curves):
            d.pop(rid, None)

    def _view(self, error: str | None = None) -> FeedView | None:
        if error is not None and error == self._error:
            return None  # the same problem as last time: nothing new to show
        self._error = error
        self._version += 1
        return FeedView(self._runs, dict(self._curves), error, self._version)

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = None
        self._data_version = None

    def close(self) -> None:
        self._close()
