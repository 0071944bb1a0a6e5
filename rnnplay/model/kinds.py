"""The cell kinds, one line each (a new kind: its module, see rnnplay.model.cell, plus one line here)."""

from __future__ import annotations

from rnnplay.model import gru_cell, lstm_cell, tanh_cell
from rnnplay.model.cell import CellKind

KINDS: dict[str, CellKind] = {
    "tanh": tanh_cell.KIND,
    "gru": gru_cell.KIND,
    "lstm": lstm_cell.KIND,
}
ALIASES = {"rnn": "tanh"}  # torch-rnn's and char-rnn's name for the vanilla cell
CELL_NAMES = tuple(KINDS)


def cell_kind(cell: str | CellKind) -> CellKind:
    """The kind named ``cell`` (``"tanh"``, ``"gru"``, ``"lstm"``; ``"rnn"`` means tanh)."""
    if isinstance(cell, CellKind):
        return cell
    kind = KINDS.get(ALIASES.get(cell, cell)) if isinstance(cell, str) else None
    if kind is None:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(KINDS)}")
    return kind
