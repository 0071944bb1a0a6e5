"""Experiments: every run recorded in a SQLite run store, listed, compared, exported, swept.

* :mod:`rnnplay.runs.store`: the store (schema, batched writes, interrupted runs),
* :mod:`rnnplay.runs.recorder`: the trainer-event consumer that records a run,
* :mod:`rnnplay.runs.importer`: runs from existing checkpoints' metric histories,
* :mod:`rnnplay.runs.export`: CSV, JSON Lines and TensorBoard export,
* :mod:`rnnplay.runs.report`: the tables and terminal plots ``rnnplay runs`` prints.

Nothing here imports torch at module level, except the importer (it reads checkpoints).
"""

from rnnplay.runs.store import RunRow, RunStore, StoreUnavailable, resolve_path

__all__ = ["RunRow", "RunStore", "StoreUnavailable", "resolve_path"]
