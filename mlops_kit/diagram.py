"""The pipeline diagram, ``images/pipeline.svg``, drawn from :data:`mlops_kit.stages.STAGES`.

``python -m mlops_kit.diagram [PATH]`` (``make docs``) writes it: one panel per notebook run,
in the order ``make demo`` runs them, each stage a box naming its module and coloured by the
environment it acts on. Plain SVG written by hand, no network and no plotting library, and
the same stages always give the same bytes, so a test can compare it with the committed file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from mlops_kit.stages import STAGES, Stage, runs

IMAGE_PATH = Path("images/pipeline.svg")

BOX_W, BOX_H, BOX_GAP = 196, 64, 22
PANEL_PAD, PANEL_HEAD, PANEL_GAP = 12, 34, 46
TOP, LEFT = 64, 16
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
COLOURS = {  # fill, stroke
    "staging": ("#ddf4ff", "#0969da"),
    "production": ("#dafbe1", "#1a7f37"),
    None: ("#f6f8fa", "#57606a"),
}


def render(stages: tuple[Stage, ...] = STAGES) -> str:
    """The diagram as SVG text."""
    groups = runs(stages)
    panel_w = BOX_W + 2 * PANEL_PAD
    tallest = max(len(members) for _, members in groups)
    panel_h = PANEL_HEAD + tallest * BOX_H + (tallest - 1) * BOX_GAP + PANEL_PAD
    width = LEFT * 2 + len(groups) * panel_w + (len(groups) - 1) * PANEL_GAP
    height = TOP + panel_h + 56
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}">',
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#57606a"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(LEFT, 28, "mlops-kit: the pipeline make demo runs", 18, weight="bold"),
        _text(LEFT, 48, "one panel per notebook run; generated from mlops_kit/stages.py by "
              "make docs", 12, fill="#57606a"),
    ]  # fmt: skip
    for index, (notebook, members) in enumerate(groups):
        x = LEFT + index * (panel_w + PANEL_GAP)
        out.append(
            f'<rect x="{x}" y="{TOP}" width="{panel_w}" height="{panel_h}" rx="10" '
            'fill="#ffffff" stroke="#d0d7de" stroke-width="1.5"/>'
        )
        number, _, title = notebook.partition("_")
        out.append(_text(x + PANEL_PAD, TOP + 22, f"{number} · {title.replace('_', ' ')}", 14,
                         weight="bold"))  # fmt: skip
        for row, stage in enumerate(members):
            y = TOP + PANEL_HEAD + row * (BOX_H + BOX_GAP)
            out.extend(_box(x + PANEL_PAD, y, stage))
            if row:
                cx = x + PANEL_PAD + BOX_W // 2
                out.append(_arrow(cx, y - BOX_GAP + 2, cx, y - 2, dashed=bool(stage.only_if)))
                if stage.only_if:
                    out.append(_text(cx + 8, y - 7, f"if {stage.only_if}", 10, fill="#57606a"))
        if index:
            y = TOP + PANEL_HEAD + BOX_H // 2
            out.append(_arrow(x - PANEL_GAP + 4, y, x - 4, y))
    out.extend(_legend(LEFT, TOP + panel_h + 30))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path: str | Path = IMAGE_PATH) -> Path:
    """Write the diagram to ``path`` (default: ``images/pipeline.svg``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlops_kit.diagram [PATH]``: write the diagram (default: images/)."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(f"wrote {write(*args[:1])}\n")
    return 0


def _box(x: int, y: int, stage: Stage) -> list[str]:
    fill, stroke = COLOURS.get(stage.environment, COLOURS[None])
    title = stage.name + (f" ({stage.environment})" if stage.environment else "")
    dash = ' stroke-dasharray="5 3"' if stage.only_if else ""
    return [
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="1.5"{dash}/>',
        _text(x + 10, y + 20, title, 13, weight="bold"),
        _text(x + 10, y + 38, stage.what, 11, fill="#24292f"),
        _text(x + 10, y + 55, f"mlops_kit.{stage.module}", 10.5, fill="#57606a", family=MONO),
    ]


def _legend(x: int, y: int) -> list[str]:
    out = []
    for label, key in (("no environment", None), ("staging", "staging"),
                       ("production", "production")):  # fmt: skip
        fill, stroke = COLOURS[key]
        out.append(
            f'<rect x="{x}" y="{y - 11}" width="14" height="14" rx="3" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
        )
        out.append(_text(x + 20, y, label, 12, fill="#24292f"))
        x += 40 + 8 * len(label)
    return out


def _arrow(x1: int, y1: int, x2: int, y2: int, *, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#57606a" stroke-width="1.5"'
        f'{dash} marker-end="url(#arrow)"/>'
    )


def _text(
    x: float,
    y: float,
    text: str,
    size: float,
    *,
    weight: str = "normal",
    fill: str = "#1f2328",
    family: str | None = None,
) -> str:
    font = f' font-family="{family}"' if family else ""
    return (
        f'<text x="{x}" y="{y}" font-size="{size}" font-weight="{weight}" fill="{fill}"{font}>'
        f"{escape(text)}</text>"
    )


if __name__ == "__main__":
    raise SystemExit(main())
