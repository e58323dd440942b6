"""The verdict: a load test judged against its service-level objectives, check by check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import ParameterError, SloFailed
from mlops_kit.settings_loadtest import Slo
from mlops_kit.verify.loadtest.results import LoadTestResult, LoadTestRun

if TYPE_CHECKING:
    import pandas as pd

TAG_KEY = "loadtest"
"""Registry tags are ``mlops.loadtest.<environment>.<figure>``."""


@dataclass(frozen=True)
class SloCheck:
    """One objective against its measurement."""

    name: str
    objective: str
    measured: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class SloVerdict(display.Rich):
    """Pass or fail of a load test against its objectives, with the reason for each failure."""

    passed: bool
    reasons: list[str]
    """One line per objective missed (empty when passed)."""
    slo: Slo
    checks: tuple[SloCheck, ...]
    p99_ms: float | None
    error_rate: float
    rps: float
    requests: int
    environment: str | None = None

    def summary(self) -> str:
        """One line: verdict, figures and reasons."""
        head = "PASSED" if self.passed else "FAILED"
        where = f" in {self.environment}" if self.environment else ""
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.1f} ms"
        tail = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return (
            f"SLO {head}{where}: p99 {p99}, {self.rps:.1f} req/s, errors {self.error_rate:.2%} "
            f"over {self.requests} requests{tail}"
        )

    def _repr_html_(self) -> str:
        rows = [
            {"objective": f"{c.name} {c.objective}",
             "measured": "–" if c.measured is None else round(c.measured, 4),
             "result": display.Html(display.badge(c.passed, "pass" if c.passed else "FAIL")),
             "why": "" if c.passed else c.reason}
            for c in self.checks
        ]  # fmt: skip
        return display.verdict(self.passed, self.summary()) + display.table(rows)

    def _figure_(self) -> display.Figure:
        return display.Figure(
            f"SLO ({self.environment or 'endpoint'})", self.summary(), self.passed
        )

    def raise_for_failure(self) -> None:
        """SloFailed naming every missed objective, unless all were met."""
        if not self.passed:
            raise SloFailed(list(self.reasons), self.environment, self)

    def table(self) -> pd.DataFrame:
        """Objective, measurement and outcome per check."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "objective": f"{c.name} {c.objective}",
                    "measured": c.measured,
                    "result": "pass" if c.passed else "FAIL",
                }
                for c in self.checks
            ]
        ).set_index("objective")

    def tags(self, environment: str) -> dict[str, str]:
        """Registry tags ``mlops.loadtest.<environment>.*`` (read into promotion evidence)."""
        from mlops_kit.train.training import TAG_PREFIX

        prefix = f"{TAG_PREFIX}{TAG_KEY}.{environment}."
        tags = {
            "verdict": "passed" if self.passed else "failed",
            "p99_ms": "" if self.p99_ms is None else f"{self.p99_ms:.2f}",
            "rps": f"{self.rps:.1f}",
            "error_rate": f"{self.error_rate:.4f}",
            "requests": str(self.requests),
            "slo": f"p99<={self.slo.p99_ms:g}ms errors<={self.slo.max_error_rate:g} "
            f"rps>={self.slo.min_rps:g}",
            "reasons": "; ".join(self.reasons)[:1000] or "all objectives met",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return {prefix + k: v for k, v in tags.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for evidence and reports."""
        return {
            "verdict": "passed" if self.passed else "failed",
            "environment": self.environment,
            "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 2),
            "rps": round(self.rps, 1),
            "error_rate": round(self.error_rate, 4),
            "requests": self.requests,
            "slo": self.slo.model_dump(),
            "reasons": list(self.reasons),
        }


def evaluate(result: LoadTestResult | LoadTestRun, slo: Slo | None = None) -> SloVerdict:
    """Judge a load test against ``slo`` (default: :class:`~mlops_kit.settings_loadtest.Slo`)."""
    slo = slo or Slo()
    environment = result.environment if isinstance(result, LoadTestRun) else None
    r = result.result if isinstance(result, LoadTestRun) else result
    p99 = r.p99_ms
    checks = []
    if p99 is None:
        checks.append(
            SloCheck(
                "p99 latency",
                f"<= {slo.p99_ms:g} ms",
                None,
                False,
                "no request succeeded, so there is no latency to judge",
            )
        )
    else:
        checks.append(
            SloCheck(
                "p99 latency",
                f"<= {slo.p99_ms:g} ms",
                round(p99, 2),
                p99 <= slo.p99_ms,
                f"p99 latency {p99:.1f} ms is above {slo.p99_ms:g} ms",
            )
        )
    errors = ", ".join(f"{k}: {n}" for k, n in r.by_status.items() if not k.startswith("2"))
    checks.append(
        SloCheck(
            "error rate",
            f"<= {slo.max_error_rate:.2%}",
            round(r.error_rate, 4),
            r.requests > 0 and r.error_rate <= slo.max_error_rate,
            f"error rate {r.error_rate:.2%} is above {slo.max_error_rate:.2%} ({errors})"
            if r.requests
            else "no request completed",
        )
    )
    checks.append(
        SloCheck(
            "throughput",
            f">= {slo.min_rps:g} req/s",
            round(r.rps, 1),
            r.rps >= slo.min_rps,
            f"throughput {r.rps:.1f} req/s is below {slo.min_rps:g} req/s",
        )
    )
    return SloVerdict(
        passed=all(c.passed for c in checks),
        reasons=[c.reason for c in checks if not c.passed],
        slo=slo,
        checks=tuple(checks),
        p99_ms=p99,
        error_rate=r.error_rate,
        rps=r.rps,
        requests=r.requests,
        environment=environment,
    )


def enforce(verdict: SloVerdict, fail_on_slo: bool) -> SloVerdict:
    """Raise SloFailed for a failed verdict when ``fail_on_slo``; else return the verdict.

    Under papermill the raise fails the notebook (and ``mlops-kit run`` exits 1).
    """
    if not isinstance(fail_on_slo, bool):
        raise ParameterError("fail_on_slo", f"must be True or False, not {fail_on_slo!r}")
    if fail_on_slo:
        verdict.raise_for_failure()
    return verdict
