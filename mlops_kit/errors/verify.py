"""Errors of the checks: inference, metrics and Prometheus, load tests and SLOs."""

from __future__ import annotations

from mlops_kit.errors.core import ConfigError, ToolkitError

# --- verify


class InferenceFailed(ToolkitError):
    """An inference request got no answer or an error answer; carries the HTTP status."""

    def __init__(self, url: str, message: str, status_code: int | None = None) -> None:
        super().__init__(f"inference at {url} failed: {message}")
        self.url = url
        self.reason = message
        self.status_code = status_code


class OutputNotFound(ToolkitError, ValueError):
    """An inference answer lacks the output asked for (or has none); also a ``ValueError``.

    A ``ValueError`` too, so callers that treat any undecodable answer alike need no new clause.
    """

    def __init__(self, output: str | None, available: list[str | None]) -> None:
        message = (
            "the response has no outputs"
            if output is None or not available
            else f"the response has no output {output!r}; it has {available}"
        )
        super().__init__(message)
        self.output = output
        self.available = available


class MetricsUnavailable(ToolkitError):
    """A server's Prometheus ``/metrics`` endpoint could not be read or parsed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not scrape metrics at {url}: {reason}")
        self.url = url
        self.reason = reason


class PrometheusMissing(ConfigError):
    """The Prometheus program is not installed; the message says how to get it."""

    def __init__(self, binary: str) -> None:
        super().__init__(
            f"Prometheus ({binary!r}) is not installed; install it with: apt-get install "
            "prometheus (Debian/Ubuntu), or set monitor.binary to its path. Without it the "
            "toolkit reads the endpoints' /metrics directly"
        )
        self.binary = binary


class MonitorError(ToolkitError):
    """The local Prometheus could not be started, reached or stopped."""


class QueryFailed(MetricsUnavailable):
    """A PromQL query was refused or could not be answered by the Prometheus HTTP API."""

    def __init__(self, url: str, expr: str, reason: str) -> None:
        ToolkitError.__init__(self, f"Prometheus at {url} could not answer {expr!r}: {reason}")
        self.url = url
        self.reason = reason
        self.expr = expr


class LoadTestError(ToolkitError):
    """A load test could not run or did not finish: no figures to judge."""


class EndpointUnavailable(LoadTestError):
    """The endpoint to load does not answer, or refuses the request body, before the load starts."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"load test not started: {url} {reason}")
        self.url = url
        self.reason = reason


class LoadGeneratorFailed(LoadTestError):
    """The load generator process exited with an error; ``output`` is the end of its stderr."""

    def __init__(self, returncode: int | None, output: str) -> None:
        super().__init__(
            f"the load generator failed (exit code {returncode}); its last output:\n"
            + (output or "(none)")
        )
        self.returncode = returncode
        self.output = output


class RemoteLoadRefused(ConfigError):
    """A load test was aimed at a host that is not loopback without ``allow_remote=True``."""

    def __init__(self, url: str, host: str, detail: str = "") -> None:
        super().__init__(
            f"refusing to load {url}: {host!r} is not a loopback address{detail}; load tests "
            "only target this machine unless allowed (allow_remote=True, or load_test.allow_remote "
            "in the project file) — and only aim them at systems you are entitled to load"
        )
        self.url = url
        self.host = host
        self.detail = detail


class SloFailed(ToolkitError):
    """A load test missed its service-level objectives; ``verdict`` holds the figures."""

    def __init__(
        self, reasons: list[str], environment: str | None = None, verdict: object | None = None
    ) -> None:
        where = f" in {environment}" if environment else ""
        super().__init__(f"load test{where} missed its SLO: " + "; ".join(reasons))
        self.reasons = reasons
        self.environment = environment
        self.verdict = verdict


class CloudWatchUnavailable(MetricsUnavailable):
    """CloudWatch could not answer a rollout's question about a SageMaker variant."""

    def __init__(self, endpoint: str, variant: str, reason: str) -> None:
        message = f"CloudWatch could not answer for variant {variant} of endpoint {endpoint}"
        ToolkitError.__init__(self, f"{message}: {reason}")
        self.url = f"cloudwatch:AWS/SageMaker/{endpoint}/{variant}"
        self.reason = reason
        self.endpoint = endpoint
        self.variant = variant
