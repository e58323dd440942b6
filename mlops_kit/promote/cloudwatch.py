"""A rollout step's per-version figures on SageMaker, from CloudWatch.

A SageMaker endpoint has no ``/metrics`` to scrape: SageMaker publishes what each production
variant did to CloudWatch instead, in namespace ``AWS/SageMaker`` with the dimensions
``EndpointName`` and ``VariantName`` (the target serves version ``N`` as variant ``vN`` of
``<model>-<environment>``, :mod:`mlops_kit.targets.sagemaker.names`). :class:`CloudWatchSource`
asks ``GetMetricData`` about the step's window, one query per figure:

- requests: the Sum of ``Invocations``;
- errors: the Sum of ``Invocation5XXErrors`` (the model failed; a client's 4xx is no error
  of the candidate's, as for the other sources);
- p99: the ``p99`` statistic of ``ModelLatency`` (microseconds: the time the container
  took), the percentile CloudWatch computes over the raw values. (moto 5.2 computes no
  percentile: it ignores ``ExtendedStatistics`` and fails on a ``p99`` query; the tests'
  server adds the statistic to its ``GetMetricData``.)

CloudWatch has neither the answers nor a shadow's comparisons: the mean prediction is None
(no drift check) and agreement is not counted. The period is the window rounded up to whole
minutes (SageMaker publishes one-minute data), so one datapoint usually covers the window;
several are summed, and the highest p99 of them is taken. The window's end is asked rounded
up to a whole second (CloudWatch drops fractions of seconds; nothing is published after now).
On AWS the data of a minute arrives a minute or two late and the window's start is rounded
down to the minute: give each step a ``bake_seconds`` of several minutes there. The tests'
CloudWatch (moto's, in-process, see ``tests/support/sagemaker_runtime.py``) has each
invocation at once and rounds the start down to the second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import CloudWatchUnavailable
from mlops_kit.promote.analysis import VersionFigures
from mlops_kit.targets.sagemaker import names

if TYPE_CHECKING:
    from mlops_kit.project import Project

NAMESPACE = "AWS/SageMaker"
SOURCE = "cloudwatch"
QUERIES = {
    "requests": ("Invocations", "Sum"),
    "errors": ("Invocation5XXErrors", "Sum"),
    "p99": ("ModelLatency", "p99"),
}
"""Query id: (metric, statistic)."""


@dataclass
class CloudWatchSource:
    """Reads SageMaker's per-variant metrics from CloudWatch: ``begin`` notes the time, each
    question asks CloudWatch about the window since."""

    project: Project
    _start: dict[tuple[str, str], datetime] = field(default_factory=dict)

    @cached_property
    def client(self) -> Any:
        """A CloudWatch client, configured as the SageMaker target's clients are."""
        from mlops_kit.targets.sagemaker.clients import client

        return client(self.project.settings.sagemaker, "cloudwatch")

    def begin(self, environment: str, model_name: str) -> None:
        self._start[(environment, model_name)] = datetime.now(UTC)

    def metrics_for(
        self, environment: str, model_name: str, version: str, role: str
    ) -> VersionFigures:
        start = self._start[(environment, model_name)]
        end = datetime.now(UTC)
        endpoint = names.endpoint_name(model_name, environment)
        variant = names.variant_name(version)
        values = self._query(endpoint, variant, start, end)
        p99 = max(values["p99"], default=None)
        return VersionFigures(
            version=version,
            role=role,
            seconds=(end - start).total_seconds(),
            requests=round(sum(values["requests"])),
            errors=round(sum(values["errors"])),
            p99_ms=None if p99 is None else p99 / 1000.0,
            source=SOURCE,
        )

    def _query(
        self, endpoint: str, variant: str, start: datetime, end: datetime
    ) -> dict[str, list[float]]:
        """Each query's datapoints for ``variant`` of ``endpoint`` between ``start`` and ``end``."""
        from mlops_kit.targets.sagemaker.clients import error_message

        period = 60 * max(1, math.ceil((end - start).total_seconds() / 60))
        dimensions = [
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": variant},
        ]
        queries = [
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": metric,
                        "Dimensions": dimensions,
                    },
                    "Period": period,
                    "Stat": stat,
                },
            }
            for key, (metric, stat) in QUERIES.items()
        ]
        values: dict[str, list[float]] = {key: [] for key in QUERIES}
        arguments: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": _second_after(end),
            "ScanBy": "TimestampAscending",
        }
        client = self.client  # a missing boto3 is its own error, not CloudWatch's
        try:
            while True:
                answer = client.get_metric_data(**arguments)
                for result in answer.get("MetricDataResults", []):
                    values[result["Id"]].extend(float(v) for v in result.get("Values", []))
                if not answer.get("NextToken"):
                    return values
                arguments["NextToken"] = answer["NextToken"]
        except Exception as exc:
            raise CloudWatchUnavailable(endpoint, variant, error_message(exc)) from exc


def _second_after(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole second.

    CloudWatch takes times to the second, dropping the fraction: the end of a window rounded
    down would lose its last fraction of a second (and a window within one second would be
    refused as empty). Rounded up, it adds nothing: nothing is published after now.
    """
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


__all__ = ["CloudWatchSource"]
