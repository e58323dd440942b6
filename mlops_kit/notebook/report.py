"""The report of an executed notebook: a headline on top, and HTML that reads offline.

The headline is a markdown cell put first in the executed notebook: which notebook ran, when,
for how long, with which parameters, whether it passed (or the cell and error it stopped at)
and the key figures — the :class:`~mlops_kit.display.Figure` each step's result handed over
in its display bundle. The HTML export is nbconvert's ``lab`` template without anything it
would fetch from the network: no require.js, MathJax or Mermaid from a CDN, no widget
manager; widget outputs show their static HTML instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_kit.display import FIGURE_MIME, Figure

HEADLINE_TAG = "mlops-headline"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# The lab template minus every block that loads a script: require.js (html_head_js), the
# widget manager from unpkg, MathJax and Mermaid from cdnjs.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
# What an output shows in the export, best first: never a widget view or JavaScript.
_PRIORITY = [
    "text/html",
    "text/markdown",
    "image/svg+xml",
    "text/latex",
    "image/png",
    "image/jpeg",
    "text/plain",
]


def figures(nb: Any) -> list[Figure]:
    """The headline figures the notebook's outputs carry; a later one replaces an earlier
    one of the same label (a request shown pending, then rolled out)."""
    found: dict[str, Figure] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if FIGURE_MIME in data:
                figure = Figure.from_json(data[FIGURE_MIME])
                found[figure.label] = figure
    return list(found.values())


def failure(nb: Any) -> dict[str, Any] | None:
    """The first error: the cell's execution count (as JupyterLab shows it), ename, evalue."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                evalue = (output.get("evalue") or "").strip().splitlines()
                return {
                    "count": cell.get("execution_count"),
                    "ename": output.get("ename", "Error"),
                    "evalue": evalue[0] if evalue else "",
                }
    return None


def headline(nb: Any, name: str) -> str:
    """The headline's markdown: what ran, pass/fail, the key figures."""
    meta = nb.metadata.get("papermill", {})
    failed = failure(nb)
    status = "✔ passed" if failed is None else "✘ failed"
    facts = [f"**{_md(name)} {status}**"]
    if meta.get("duration") is not None:
        facts.append(f"in {float(meta['duration']):.1f} s")
    if meta.get("start_time"):
        facts.append(f"started {str(meta['start_time'])[:19].replace('T', ' ')} UTC")
    lines = ["### Report · " + " · ".join(facts), ""]
    given = meta.get("parameters") or {}
    if given:
        shown = ", ".join(f"`{k}={v!r}`" for k, v in given.items())
        lines += [f"Parameters: {_md(shown)}", ""]
    if failed is not None:
        where = f"cell In [{failed['count']}]" if failed["count"] is not None else "a cell"
        lines += [f"**Stopped at {where}: {_md(failed['ename'])}: {_md(failed['evalue'])}**", ""]
    rows = figures(nb)
    if rows:
        lines += ["| | step | outcome |", "|---|---|---|"]
        mark = {True: "✔", False: "✘", None: "•"}
        lines += [f"| {mark[f.passed]} | {_md(f.label)} | {_md(f.text)} |" for f in rows]
    return "\n".join(lines).rstrip() + "\n"


def add_headline(nb: Any, name: str) -> Any:
    """Put (or replace) the headline cell at the top of ``nb``; returns ``nb``."""
    import nbformat

    nb.cells = [c for c in nb.cells if HEADLINE_TAG not in c.get("metadata", {}).get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(headline(nb, name))
    cell.metadata["tags"] = [HEADLINE_TAG]
    nb.cells.insert(0, cell)
    return nb


def export_html(notebook: Path) -> Path:
    """Give the executed notebook its headline and render it to HTML beside it (offline)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    html = notebook.with_suffix(".html")
    if not notebook.is_file():
        return html
    nb = nbformat.read(notebook, as_version=4)
    add_headline(nb, notebook.stem)
    nbformat.write(nb, notebook)
    # Widget state only serves a widget manager, which the offline page does not load.
    nb.metadata.pop("widgets", None)
    config = Config(
        {
            # Coalesced streams show a progress bar as its final line, not one per refresh.
            "CoalesceStreamsPreprocessor": {"enabled": True},
            "NbConvertBase": {"display_data_priority": _PRIORITY},
        }
    )
    exporter = HTMLExporter(
        config=config,
        template_name="lab",
        extra_loaders=[DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="offline.html.j2",
    )
    body, _ = exporter.from_notebook_node(nb)
    html.write_text(body, encoding="utf-8")
    return html


def _md(text: Any) -> str:
    # Inside a markdown table cell: no pipes or line breaks.
    return str(text).replace("|", "\\|").replace("\n", " ")
