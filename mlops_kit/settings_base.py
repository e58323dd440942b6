"""The base of every settings section: unknown keys refused, field docstrings documented."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mlops_kit.display import fields


class Section(BaseModel):
    """A section of the project file (``training:``, ``load_test:`` …) or a part of one."""

    # The docstring under each field becomes its schema description: docs/configuration.md.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    def _repr_html_(self) -> str:
        return fields(self.model_dump())
