"""What notebook cells show: static HTML tables, verdict badges and links. Stdlib only.

Every result object a cell shows renders itself with these helpers (``_repr_html_``), so an
executed notebook and its HTML export read the same offline, without a script. An object
that is a step's outcome also names its headline :class:`Figure`; the report's headline
(:mod:`mlops_kit.notebook.report`) gathers them from the cell outputs. :func:`quiet` keeps
library chatter out of cell output unless something fails.

Any layer may import this module (targets and serving included): it imports only the stdlib.
"""

from __future__ import annotations

import contextlib
import html
import io
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

FIGURE_MIME = "application/vnd.mlops-kit.figure+json"
"""The MIME type under which a displayed object hands its headline figure to the report."""

PASS, FAIL, INFO = "#1a7f37", "#cf222e", "#57606a"
TH_STYLE = "text-align:left;padding:2px 10px 2px 4px;border-bottom:1px solid #d0d7de"
TD_STYLE = "padding:2px 10px 2px 4px"
_MARK = {True: "✔", False: "✘", None: "•"}
_COLOUR = {True: PASS, False: FAIL, None: INFO}


@dataclass(frozen=True)
class Figure:
    """One line of a report's headline: what (``label``), the figure, and pass/fail if any."""

    label: str
    text: str
    passed: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data, for the display bundle."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Figure:
        """The inverse of :meth:`to_json`; missing keys read as empty."""
        passed = data.get("passed")
        return cls(str(data.get("label", "")), str(data.get("text", "")), passed)


class Rich:
    """Mixin for result objects: static HTML for cells, and a headline figure for the report.

    Subclasses write ``_repr_html_`` and, when they are a step's outcome, ``_figure_``.
    """

    def _repr_html_(self) -> str:
        raise NotImplementedError

    def _figure_(self) -> Figure | None:
        return None

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        # IPython adds text/html (from _repr_html_) and text/plain to what this returns.
        figure = self._figure_()
        return {FIGURE_MIME: figure.to_json()} if figure is not None else {}


class Fields(dict[str, Any]):
    """A plain dict that shows as a two-column table in a notebook."""

    def _repr_html_(self) -> str:
        return fields(self)


@dataclass(frozen=True)
class Html:
    """A ready HTML fragment for a cell, with a plain-text stand-in for terminals."""

    html: str
    text: str = ""

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text or self.html


# -- values ----------------------------------------------------------------------------------


def text(value: Any) -> str:
    """A value as a person reads it: rounded floats, dates to the second, ``–`` for None."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset) and all(
        not isinstance(v, Mapping | list | tuple) for v in value
    ):
        return ", ".join(text(v) for v in value) or "–"
    return str(value)


def esc(value: Any) -> str:
    """:func:`text`, HTML-escaped."""
    return html.escape(text(value))


def cell(value: Any) -> str:
    """A value as table-cell HTML: nested mappings and lists of mappings become tables,
    :class:`Html` stays as it is, anything else is escaped text."""
    if isinstance(value, Html):
        return value.html
    if isinstance(value, Mapping):
        return fields(value) if value else "–"
    if isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        return table(value)
    return esc(value)


# -- fragments -------------------------------------------------------------------------------


def badge(passed: bool | None, label: str) -> str:
    """A coloured pill: green with ✔ for True, red with ✘ for False, grey for None."""
    return (
        f'<span class="mlops-badge" style="display:inline-block;padding:0 0.55em;'
        f"border-radius:0.8em;background:{_COLOUR[passed]};color:#fff;font-weight:600;"
        f'white-space:nowrap">{_MARK[passed]} {html.escape(label)}</span>'
    )


def verdict(passed: bool | None, detail: str, label: str | None = None) -> str:
    """One line: a badge (``PASSED``/``FAILED`` unless ``label``) and what it is about."""
    label = label or {True: "PASSED", False: "FAILED", None: "INFO"}[passed]
    return f'<p class="mlops-verdict">{badge(passed, label)} {html.escape(detail)}</p>'


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of mappings as an HTML table; columns default to the keys in order of appearance."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f'<th style="{TH_STYLE}">{html.escape(str(c))}</th>' for c in columns)
    body = "".join("<tr>" + "".join(_td(row.get(c)) for c in columns) + "</tr>" for row in rows)
    return f'<table class="mlops-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def fields(mapping: Mapping[str, Any], title: str | None = None) -> str:
    """A mapping as a two-column table (name, value), optionally under a title."""
    body = "".join(
        f'<tr><th style="{TD_STYLE};text-align:left">{html.escape(str(k))}</th>{_td(v)}</tr>'
        for k, v in mapping.items()
    )
    caption = f'<caption style="text-align:left">{html.escape(title)}</caption>' if title else ""
    return f'<table class="mlops-fields">{caption}<tbody>{body}</tbody></table>'


def _td(value: Any) -> str:
    # Numbers line up on the right, words read from the left.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td style="{TD_STYLE};text-align:{"right" if number else "left"}">{cell(value)}</td>'


def link(target: str | Path, label: str | None = None) -> str:
    """A link to a URL, or to a local file (``file://``, absolute) that exists."""
    shown = html.escape(label or str(target))
    href = str(target)
    if not href.startswith(("http://", "https://", "file://")):
        path = Path(href).expanduser()
        if not path.exists():
            return f"<code>{shown}</code>"
        href = path.resolve().as_uri()
    return f'<a href="{html.escape(href, quote=True)}">{shown}</a>'


def section(title: str, *parts: str, passed: bool | None = None, status: str = "") -> str:
    """A titled block: a heading (with a badge when ``status``), then the parts."""
    mark = f" {badge(passed, status)}" if status else ""
    body = "".join(parts)
    return f'<div class="mlops-report"><h4>{html.escape(title)}{mark}</h4>{body}</div>'


def paragraph(*sentences: str) -> str:
    """Already-escaped sentences as one paragraph."""
    return "<p>" + " ".join(s for s in sentences if s) + "</p>"


# -- library chatter -------------------------------------------------------------------------


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Hold back what libraries write to stderr (MLflow's INFO lines, "Successfully registered
    model", alembic); replay it when the block raises, so a failure keeps its context."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            yield
    except BaseException:
        sys.stderr.write(buffer.getvalue())
        raise
