"""The record of a pipeline run: per step its status, duration, cache hit, attempts, outputs.

Stored as JSON beside the step cache (``runs/<run id>.json``), shown as a table in notebook 02
and its HTML report, and as a chart of where the time went.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from mlops_kit import display

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Status = Literal["ran", "cached", "failed"]
_PASSED: dict[str, bool | None] = {"ran": True, "cached": None, "failed": False}
_COLOURS = {"ran": display.PASS, "cached": display.INFO, "failed": display.FAIL}


@dataclass(frozen=True)
class StepRecord:
    """How one step went."""

    step: str
    status: Status
    duration: float
    """Seconds, retries and their waits included; 0 for a cached step."""
    attempts: int
    """How often it ran: 0 when cached, above 1 when retried."""
    key: str
    """The step's cache key (sha256 of code, parameters and input digests)."""
    outputs: dict[str, str] = field(default_factory=dict)
    """sha256 of each output, by name."""
    error: str = ""

    @property
    def cached(self) -> bool:
        """Whether the step was skipped and its stored outputs reused."""
        return self.status == "cached"

    def line(self) -> str:
        """One line of progress: ``train       ran in 1.2 s`` / ``ingest      cached``."""
        if self.status == "cached":
            return f"{self.step:<12} cached (unchanged since it last ran)"
        tries = f", {self.attempts} attempts" if self.attempts > 1 else ""
        what = "failed" if self.status == "failed" else "ran"
        reason = f": {self.error}" if self.error else ""
        return f"{self.step:<12} {what} in {self.duration:.2f} s{tries}{reason}"

    def row(self) -> dict[str, Any]:
        """The step as a row of the run's table."""
        outputs = ", ".join(f"{name} {digest[:10]}" for name, digest in self.outputs.items())
        return {
            "step": self.step,
            "status": display.Html(display.badge(_PASSED[self.status], self.status), self.status),
            "duration (s)": round(self.duration, 3),
            "cache hit": "yes" if self.cached else "no",
            "attempts": self.attempts,
            "outputs": outputs or self.error,
        }


@dataclass
class RunRecord(display.Rich):
    """One run of the pipeline."""

    run_id: str
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    status: str = "running"
    duration: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def add(self, step: StepRecord) -> StepRecord:
        """Append ``step``'s record and return it."""
        self.steps.append(step)
        return step

    def finish(self, status: str) -> None:
        """Mark the run ``succeeded`` or ``failed``."""
        self.status = status
        self.duration = time.monotonic() - self._t0

    def step(self, name: str) -> StepRecord:
        """The record of step ``name``."""
        for step in self.steps:
            if step.step == name:
                return step
        raise KeyError(name)

    @property
    def cached(self) -> list[str]:
        """Names of the steps that were cached."""
        return [s.step for s in self.steps if s.cached]

    def to_json(self) -> dict[str, Any]:
        """Plain data, for the store."""
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["steps"] = [asdict(s) for s in self.steps]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The inverse of :meth:`to_json`."""
        steps = [StepRecord(**s) for s in data.get("steps", [])]
        return cls(data["run_id"], data["started"], data["status"], data["duration"], steps)

    def summary(self) -> str:
        """``6 steps: 4 cached, 2 ran, in 3.1 s``."""
        counts = {s: sum(r.status == s for r in self.steps) for s in ("cached", "ran", "failed")}
        shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        return f"{len(self.steps)} steps: {shown}, in {self.duration:.1f} s"

    def _repr_html_(self) -> str:
        ok = {"succeeded": True, "failed": False}.get(self.status)
        return display.section(
            f"Pipeline run {self.run_id}",
            display.paragraph(display.esc(self.summary()) + "."),
            display.table([s.row() for s in self.steps]),
            passed=ok,
            status=self.status,
        )

    def _figure_(self) -> display.Figure:
        ok = {"succeeded": True, "failed": False}.get(self.status)
        return display.Figure("pipeline", self.summary(), ok)

    def chart(self) -> Figure:
        """Each step's duration as a bar, coloured by status (cached steps take no time)."""
        import matplotlib.pyplot as plt

        names = [s.step for s in self.steps][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1))
        bars = ax.barh(names, [s.duration for s in self.steps][::-1])
        for bar, step in zip(bars, self.steps[::-1], strict=True):
            bar.set_color(_COLOURS[step.status])
            note = step.status + (f" ×{step.attempts}" if step.attempts > 1 else "")
            ax.annotate(note, (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        xytext=(4, 0), textcoords="offset points", va="center")  # fmt: skip
        ax.set_xlabel("seconds")
        ax.set_title(f"Pipeline run {self.run_id}: {self.status}")
        ax.margins(x=0.25)
        fig.tight_layout()
        plt.close(fig)
        return fig
