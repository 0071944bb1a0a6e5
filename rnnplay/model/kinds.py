"""The cell kinds, one line each (a new kind: its module, see rnnplay.model.cell, plus one line here).

This module imports no torch: the settings (rnnplay.config) take their choices from
:data:`CELL_NAMES` without loading the models. A kind's module is imported the first time the
kind is asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rnnplay.model.cell import CellKind

KIND_MODULES: dict[str, str] = {  # name -> the module defining KIND
    "tanh": "rnnplay.model.tanh_cell",
    "gru": "rnnplay.model.gru_cell",
    "lstm": "rnnplay.model.lstm_cell",
}
ALIASES = {"rnn": "tanh"}  # torch-rnn's and char-rnn's name for the vanilla cell
CELL_NAMES: list[str] = list(KIND_MODULES)  # every kind's name; register() adds one at runtime
KINDS: dict[str, CellKind] = {}  # the kinds loaded so far, by name


def register(kind: CellKind) -> None:
    """Add a kind at runtime (a plugin, a test): afterwards every model, the settings' choices, the
    trainer, checkpoints and the sampler accept ``kind.name``."""
    KINDS[kind.name] = kind
    if kind.name not in CELL_NAMES:
        CELL_NAMES.append(kind.name)


def unregister(name: str) -> None:
    """Undo :func:`register` (the built-in kinds stay)."""
    if name not in KIND_MODULES:
        KINDS.pop(name, None)
        if name in CELL_NAMES:
            CELL_NAMES.remove(name)


def cell_kind(cell: str | CellKind) -> CellKind:
    """The kind named ``cell`` (``"tanh"``, ``"gru"``, ``"lstm"``; ``"rnn"`` means tanh)."""
    if not isinstance(cell, str):
        if hasattr(cell, "forward_layer"):  # already a CellKind
            return cell
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELL_NAMES)}")
    name = ALIASES.get(cell, cell)
    kind = KINDS.get(name)
    if kind is None:
        if name not in KIND_MODULES:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELL_NAMES)}")
        kind = KINDS[name] = import_module(KIND_MODULES[name]).KIND
    return kind


def all_kinds() -> list[CellKind]:
    """Every kind (built-in and registered), loaded."""
    return [cell_kind(name) for name in CELL_NAMES]
