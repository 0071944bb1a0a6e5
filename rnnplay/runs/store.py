"""The run store: one SQLite file (Python's ``sqlite3``, WAL) that every run records into.

    store = RunStore.open(path)                  # writable; StoreUnavailable if it cannot be used
    store = RunStore.open(path, readonly=True)   # for listing: never creates or migrates anything
    run_id = store.create_run(name=..., config={...}, corpus=..., ...)
    store.write(run_id, steps=[...], evals=[...], samples=[...], fields={"steps": 120, ...})

Layout (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`; older files are migrated on a writable
open, newer ones refused)::

    runs     one row per run: id, name, kind (train/app/sweep/import), status, config (JSON),
             corpus name/location/chars/fingerprint, device, params, host, pid, started/ended/
             heartbeat times (Unix seconds), steps done, total steps, last train loss, last and
             best validation loss, chars/s, elapsed s, checkpoint paths, parent run, sweep, message,
             summary (JSON)
    metrics  (run, step) -> elapsed s, train loss, lr, gradient norm, chars/s   one per step
    evals    (run, step) -> elapsed s, validation loss
    samples  (run, step) -> text

The ``runs`` row carries every figure the run table shows, kept current by the recorder, so
listing never scans metrics. Several processes may write at once: WAL lets readers go on while
one writes, ``busy_timeout`` makes a writer wait for another's transaction, and :meth:`write`
retries a transaction that still finds the file locked.

Interrupted runs: a row still "running" whose process is gone (same host, its pid no longer
exists) or whose heartbeat is older than :data:`STALE_S` is shown as "interrupted"; a writable open
marks it so. A live recorder that finds its row marked interrupted (the process was suspended)
sets it back to running on its next write.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rnnplay.errors import UserError

SCHEMA_VERSION = 1
STALE_S = 120.0  # a recorder writes a heartbeat at least every few seconds
BUSY_TIMEOUT_MS = 10_000
STATUSES = ("running", "completed", "stopped", "failed", "diverged", "interrupted")
ENV_VAR = "RNNPLAY_RUNS_DB"
OFF = ("off", "none", "no", "0", "false")
DEFAULT_FOLDER = "checkpoints"

RUN_COLUMNS = (
    "id", "name", "kind", "status", "config", "corpus", "corpus_location", "corpus_chars", "corpus_hash",
    "device", "params", "host", "pid", "started_at", "ended_at", "heartbeat_at", "steps", "total_steps",
    "train_loss", "val_loss", "best_val", "chars_per_s", "elapsed_s", "checkpoint", "best_checkpoint",
    "parent_id", "sweep", "message", "summary",
)
METRIC_COLUMNS = ("step", "elapsed_s", "train_loss", "lr", "grad_norm", "chars_per_s")

_SCHEMA_1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'train',
    status TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    corpus TEXT, corpus_location TEXT, corpus_chars INTEGER, corpus_hash TEXT,
    device TEXT, params INTEGER,
    host TEXT, pid INTEGER,
    started_at REAL NOT NULL, ended_at REAL, heartbeat_at REAL,
    steps INTEGER NOT NULL DEFAULT 0, total_steps INTEGER,
    train_loss REAL, val_loss REAL, best_val REAL, chars_per_s REAL, elapsed_s REAL,
    checkpoint TEXT, best_checkpoint TEXT,
    parent_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    sweep TEXT, message TEXT, summary TEXT
);
CREATE INDEX runs_started ON runs(started_at DESC);
CREATE INDEX runs_status ON runs(status);
CREATE INDEX runs_checkpoint ON runs(checkpoint);
CREATE INDEX runs_sweep ON runs(sweep);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    elapsed_s REAL, train_loss REAL, lr REAL, grad_norm REAL, chars_per_s REAL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE evals (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    elapsed_s REAL, val_loss REAL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE samples (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
"""

# MIGRATIONS[v] takes a file at user_version v to v + 1 (v = 0 is a new, empty file).
MIGRATIONS: dict[int, str] = {0: _SCHEMA_1}


class StoreUnavailable(UserError):
    """The store cannot be used (corrupt, read-only, newer, unreachable). The message is one line."""


def resolve_path(flag: str | None = None, folder: str = DEFAULT_FOLDER) -> str | None:
    """The store's path: ``--runs-db`` if given, else $RNNPLAY_RUNS_DB, else ``folder/runs.db``.

    "off" (or "none", "0", ...) in either turns recording off: None.
    """
    for value in (flag, os.environ.get(ENV_VAR)):
        if value is not None and value.strip():
            return None if value.strip().lower() in OFF else os.path.expanduser(value.strip())
    return os.path.join(folder, "runs.db")


@dataclass(frozen=True)
class RunRow:
    """One row of ``runs`` (``config`` and ``summary`` decoded)."""

    id: int
    name: str
    kind: str
    status: str
    config: dict
    corpus: str | None
    corpus_location: str | None
    corpus_chars: int | None
    corpus_hash: str | None
    device: str | None
    params: int | None
    host: str | None
    pid: int | None
    started_at: float
    ended_at: float | None
    heartbeat_at: float | None
    steps: int
    total_steps: int | None
    train_loss: float | None
    val_loss: float | None
    best_val: float | None
    chars_per_s: float | None
    elapsed_s: float | None
    checkpoint: str | None
    best_checkpoint: str | None
    parent_id: int | None
    sweep: str | None
    message: str | None
    summary: dict

    def to_dict(self) -> dict:
        return {c: getattr(self, c) for c in RUN_COLUMNS}


def _row(values: Sequence[Any]) -> RunRow:
    d = dict(zip(RUN_COLUMNS, values))
    d["config"] = _loads(d["config"])
    d["summary"] = _loads(d["summary"])
    return RunRow(**d)


def _loads(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or we cannot tell
    return True


def is_interrupted(host: str | None, pid: int | None, heartbeat_at: float | None, now: float,
                   this_host: str) -> bool:
    """Whether a "running" row's process is gone: same host and pid dead, or a stale heartbeat."""
    if host == this_host and pid is not None and not pid_alive(pid):
        return True
    return heartbeat_at is None or now - heartbeat_at > STALE_S


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


class RunStore:
    """A connection to the run store (see the module docstring). Use from one thread at a time."""

    def __init__(self, conn: sqlite3.Connection, path: str, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self.host = socket.gethostname()

    # ---- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str, readonly: bool = False) -> RunStore:
        """Open (a writable open creates the file and folder) and check the schema.

        Raises :class:`StoreUnavailable` with a one-line reason when the file is corrupt,
        read-only (writable open), from a newer rnnplay, or cannot be reached; a read-only open of
        a missing file raises it too ("no runs recorded yet").
        """
        shown = repr(path)
        if readonly and not os.path.exists(path):
            raise StoreUnavailable(f"no run store at {shown} yet (runs are recorded there by rnnplay train); "
                                   f"give another with --runs-db PATH or ${ENV_VAR}")
        if os.path.isdir(path):
            raise StoreUnavailable(f"run store {shown} is a folder; give a file path such as "
                                   f"{os.path.join(path, 'runs.db')}")
        try:
            if readonly:
                conn = _connect_readonly(path)
            else:
                folder = os.path.dirname(os.path.abspath(path))
                os.makedirs(folder, exist_ok=True)
                if os.path.exists(path) and not os.access(path, os.W_OK):
                    raise StoreUnavailable(f"run store {shown} is read-only")
                conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                       check_same_thread=False)
            store = cls(conn, path, readonly)
            store._prepare()
        except StoreUnavailable:
            raise
        except sqlite3.DatabaseError as exc:
            what = _describe(exc)
            if "not a database" in what or "malformed" in what or "corrupt" in what:
                raise StoreUnavailable(f"run store {shown} is corrupt ({what}); move it away and a new one "
                                       "is made, or give another with --runs-db PATH") from None
            if "readonly" in what or "read-only" in what:
                raise StoreUnavailable(f"run store {shown} is read-only ({what})") from None
            raise StoreUnavailable(f"run store {shown} cannot be opened ({what})") from None
        except OSError as exc:
            raise StoreUnavailable(f"run store {shown} cannot be opened ({exc.strerror or exc})") from None
        return store

    def _prepare(self) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        version = c.execute("PRAGMA user_version").fetchone()[0]  # reads the header: corrupt files fail here
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(f"run store {self.path!r} was written by a newer rnnplay (schema {version}, "
                                   f"this one reads {SCHEMA_VERSION}); upgrade rnnplay (pip install -U rnnplay) "
                                   "or give another store with --runs-db PATH")
        c.execute("PRAGMA foreign_keys=ON")
        if self.readonly:
            if version < SCHEMA_VERSION:
                raise StoreUnavailable(f"run store {self.path!r} is from an older rnnplay (schema {version}); "
                                       "record one run into it (rnnplay train) to upgrade it")
            return
        if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
        if version < SCHEMA_VERSION:
            self._migrate()
        self.mark_interrupted()

    def _migrate(self) -> None:
        with self._transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                version += 1
                self.conn.execute(f"PRAGMA user_version={version}")

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- writing ----------------------------------------------------------------------------

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            _retry(lambda: self.conn.execute("BEGIN IMMEDIATE"))
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                _retry(lambda: self.conn.execute("COMMIT"))
            else:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    def _transaction(self) -> RunStore._Tx:
        return RunStore._Tx(self.conn)

    def create_run(self, **fields: Any) -> int:
        """Insert a run (status "running" unless given); returns its id. Unknown fields: KeyError."""
        now = time.time()
        row = {"status": "running", "started_at": now, "heartbeat_at": now, "host": self.host,
               "pid": os.getpid(), "name": "", **fields}
        cols = [k for k in row if k != "id"]
        for k in cols:
            if k not in RUN_COLUMNS:
                raise KeyError(k)
        values = [_encode(k, row[k]) for k in cols]
        with self._transaction() as c:
            cur = c.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values)
            run_id = int(cur.lastrowid)
            if not row["name"]:
                c.execute("UPDATE runs SET name=? WHERE id=?", (f"run-{run_id}", run_id))
        return run_id

    def write(self, run_id: int, steps: Iterable[Sequence] = (), evals: Iterable[Sequence] = (),
              samples: Iterable[Sequence] = (), fields: dict[str, Any] | None = None) -> None:
        """One transaction: metric rows (:data:`METRIC_COLUMNS`), eval rows (step, elapsed_s,
        val_loss), sample rows (step, text), and updates of the run's own columns.

        A step written again (a run that fell back to its last good weights) replaces the old row.
        """
        with self._transaction() as c:
            c.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                          ((run_id, *r) for r in steps))
            c.executemany("INSERT OR REPLACE INTO evals VALUES (?, ?, ?, ?)", ((run_id, *r) for r in evals))
            c.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?)", ((run_id, *r) for r in samples))
            if fields:
                self._update(c, run_id, fields)

    def update_run(self, run_id: int, **fields: Any) -> None:
        with self._transaction() as c:
            self._update(c, run_id, fields)

    @staticmethod
    def _update(c: sqlite3.Connection, run_id: int, fields: dict[str, Any]) -> None:
        for k in fields:
            if k not in RUN_COLUMNS or k == "id":
                raise KeyError(k)
        sets = ", ".join(f"{k}=?" for k in fields)
        c.execute(f"UPDATE runs SET {sets} WHERE id=?", [*(_encode(k, v) for k, v in fields.items()), run_id])

    def delete_runs(self, ids: Sequence[int]) -> int:
        """Delete runs and their metrics, evals and samples; returns how many runs went."""
        with self._transaction() as c:
            marks = ", ".join("?" * len(ids))
            for table in ("metrics", "evals", "samples"):
                c.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", list(ids))
            return c.execute(f"DELETE FROM runs WHERE id IN ({marks})", list(ids)).rowcount

    def mark_interrupted(self) -> list[int]:
        """Mark "running" rows whose process is gone as interrupted (see the module docstring)."""
        gone = self._gone()
        if gone and not self.readonly:
            with self._transaction() as c:
                c.executemany("UPDATE runs SET status='interrupted', ended_at=COALESCE(ended_at, heartbeat_at) "
                              "WHERE id=? AND status='running'", [(i,) for i in gone])
        return gone

    def _gone(self) -> list[int]:
        now = time.time()
        rows = self.conn.execute("SELECT id, host, pid, heartbeat_at FROM runs WHERE status='running'").fetchall()
        return [r[0] for r in rows if is_interrupted(r[1], r[2], r[3], now, self.host)]

    # ---- reading ----------------------------------------------------------------------------

    def runs(self, corpus: str | None = None, status: str | None = None, sweep: str | None = None,
             limit: int | None = None) -> list[RunRow]:
        """Runs, newest first; a read-only store shows gone "running" rows as interrupted."""
        where, args = [], []
        for col, value in (("corpus", corpus), ("sweep", sweep)):
            if value is not None:
                where.append(f"({col}=? OR {col}_location=?)" if col == "corpus" else f"{col}=?")
                args.extend([value, value] if col == "corpus" else [value])
        sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC"
        rows = [self._shown(_row(r)) for r in self.conn.execute(sql, args)]
        if status is not None:
            rows = [r for r in rows if r.status == status]
        return rows[:limit] if limit is not None else rows

    def _shown(self, row: RunRow) -> RunRow:
        if row.status == "running" and is_interrupted(row.host, row.pid, row.heartbeat_at, time.time(), self.host):
            import dataclasses

            return dataclasses.replace(row, status="interrupted")
        return row

    def run(self, run_id: int) -> RunRow | None:
        r = self.conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id=?", (run_id,)).fetchone()
        return None if r is None else self._shown(_row(r))

    def get(self, run_id: int) -> RunRow:
        """The run, or a UserError naming what to do."""
        row = self.run(run_id)
        if row is None:
            raise UserError(f"no run {run_id} in {self.path!r}; 'rnnplay runs' lists the recorded runs")
        return row

    def metrics(self, run_id: int, since_step: int = 0) -> list[tuple]:
        """(step, elapsed_s, train_loss, lr, grad_norm, chars_per_s) rows in step order."""
        return self.conn.execute("SELECT step, elapsed_s, train_loss, lr, grad_norm, chars_per_s FROM metrics "
                                 "WHERE run_id=? AND step>? ORDER BY step", (run_id, since_step)).fetchall()

    def evals(self, run_id: int, since_step: int = 0) -> list[tuple]:
        """(step, elapsed_s, val_loss) rows in step order."""
        return self.conn.execute("SELECT step, elapsed_s, val_loss FROM evals WHERE run_id=? AND step>? "
                                 "ORDER BY step", (run_id, since_step)).fetchall()

    def samples(self, run_id: int) -> list[tuple]:
        """(step, text) rows in step order."""
        return self.conn.execute("SELECT step, text FROM samples WHERE run_id=? ORDER BY step", (run_id,)).fetchall()

    def by_checkpoint(self, path: str) -> RunRow | None:
        """The newest run whose checkpoint is ``path`` (compared as absolute paths)."""
        r = self.conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE checkpoint=? "
                              "ORDER BY started_at DESC, id DESC LIMIT 1", (os.path.abspath(path),)).fetchone()
        return None if r is None else self._shown(_row(r))

    def data_version(self) -> tuple[int, int]:
        """Changes when any connection commits (cheap: for a UI that polls for new rows)."""
        dv = self.conn.execute("PRAGMA data_version").fetchone()[0]
        n = self.conn.execute("SELECT COALESCE(MAX(heartbeat_at), 0) * 1000 FROM runs").fetchone()[0]
        return int(dv), int(n)


def _encode(column: str, value: Any) -> Any:
    if column in ("config", "summary"):
        return json.dumps(value if value is not None else {}, default=str, allow_nan=True)
    if column in ("checkpoint", "best_checkpoint") and value:
        return os.path.abspath(value)
    return value


def _retry(fn, attempts: int = 6):
    """Run ``fn``; if SQLite still reports the file busy after its busy_timeout, wait and try again."""
    delay = 0.05
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(delay)
            delay *= 2


def _connect_readonly(path: str) -> sqlite3.Connection:
    """Read-only: ``mode=ro``; a WAL file in a folder we cannot write needs ``immutable=1``."""
    from urllib.parse import quote

    uri = "file:" + quote(os.path.abspath(path))
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute("PRAGMA user_version").fetchone()
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
