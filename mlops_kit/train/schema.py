"""Input schemas of registered versions, compared column by column, and MLflow's schema errors
told in one line (never with the data they were given)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHOWN_COLUMNS = 3
"""Columns named in a summary per kind of change; the rest are counted."""
MAX_REASON = 300
"""Characters of an MLflow schema error kept in a message."""
RESET_HINT = (
    "use a new model_name, or reset_champion=True (mlops-kit run 02 --reset-champion) to gate "
    "against no champion"
)


@dataclass(frozen=True)
class SchemaChange:
    """How a challenger's input columns differ from the champion's."""

    champion_version: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)
    """``(column, champion's type, challenger's type)``."""
    refusal: str = ""
    """Why the champion's model refused the data, when no signature told the columns apart."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped or self.refusal)

    def summary(self) -> str:
        """One line: what changed, with a few column names each."""
        if self.refusal and not (self.added or self.removed or self.retyped):
            return f"champion v{self.champion_version} cannot score this data: {self.refusal}"
        parts = []
        if self.added:
            parts.append(f"{_count(self.added)} added ({_names(self.added)})")
        if self.removed:
            parts.append(f"{_count(self.removed)} removed ({_names(self.removed)})")
        if self.retyped:
            shown = [f"{c} {a}->{b}" for c, a, b in self.retyped]
            parts.append(f"{_count(self.retyped)} retyped ({_names(shown)})")
        return (
            f"the input schema differs from champion v{self.champion_version}'s: {', '.join(parts)}"
        )


def compare(
    champion_version: str, champion: Mapping[str, str], challenger: Mapping[str, str]
) -> SchemaChange:
    """The columns added, removed and retyped from ``champion`` to ``challenger`` (name -> type).

    Columns keep the challenger's order (added, retyped) and the champion's (removed).
    """
    return SchemaChange(
        champion_version=champion_version,
        added=[c for c in challenger if c not in champion],
        removed=[c for c in champion if c not in challenger],
        retyped=[
            (c, champion[c], t) for c, t in challenger.items() if c in champion and champion[c] != t
        ],  # fmt: skip
    )


def input_columns(model_dir: str | Path) -> dict[str, str] | None:
    """The column names and types of the signature of the MLflow model in ``model_dir``.

    None when the model has no signature or a tensor one (no named columns to compare).
    """
    from mlflow.models import Model

    signature = Model.load(str(Path(model_dir) / "MLmodel")).signature
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return None
    return {spec["name"]: str(spec["type"]) for spec in signature.inputs.to_dict()}


def schema_failure(exc: BaseException) -> str | None:
    """For MLflow's "failed to enforce schema" error, its reason in one short line; else None.

    MLflow's message quotes the whole input (a DataFrame's repr) and the schema before the
    reason; only the reason is kept.
    """
    if getattr(exc, "error_class", None) != "SCHEMA_ENFORCEMENT_FAILED":
        return None
    return schema_reason(getattr(exc, "message", None) or str(exc))


def schema_reason(text: str) -> str | None:
    """The reason in the text of MLflow's schema enforcement error, or None if it is none."""
    if "Failed to enforce" not in text and "enforce model input schema" not in text:
        return None
    found = re.search(r"Error: (.*)\Z", text, re.DOTALL)
    reason = " ".join((found.group(1) if found else "").split()) or "input does not match"
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1].rstrip() + "…"
    return f"the data does not fit the model's input schema: {reason}"


def _count(items: Sequence[Any]) -> str:
    return f"{len(items)} column{'s' if len(items) != 1 else ''}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_COLUMNS])
    rest = len(names) - SHOWN_COLUMNS
    return f"{shown}, … {rest} more" if rest > 0 else shown
