"""Cron expressions: checked once, when a schedule is added, and asked for fire times.

Five fields are standard cron (minute hour day-of-month month day-of-week). A sixth field in
front counts seconds, as in Quartz or Spring: ``*/2 * * * * *`` fires every two seconds. Only
the embedded scheduler honours seconds; a Kubernetes CronJob and a CI ``schedule:`` take five
fields, so :func:`five_fields` refuses a seconds field other than ``0``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlops_kit.errors import InvalidCron


def _croniter(expression: str, start: datetime) -> Any:
    from croniter import croniter

    return croniter(expression, start, second_at_beginning=len(expression.split()) == 6)


def check(expression: str) -> str:
    """``expression`` normalized (single spaces); InvalidCron saying why it is not one."""
    from croniter import CroniterError

    fields = expression.split()
    if len(fields) not in (5, 6):
        raise InvalidCron(
            expression,
            f"{len(fields)} field(s); expected 5 (minute hour day month weekday) "
            "or 6 (seconds first)",
        )
    normalized = " ".join(fields)
    try:
        _croniter(normalized, datetime.now(UTC)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidCron(expression, str(exc) or type(exc).__name__) from None
    return normalized


def next_after(expression: str, moment: datetime) -> datetime:
    """The first fire time of ``expression`` strictly after ``moment`` (UTC, aware)."""
    return _croniter(expression, moment.astimezone(UTC)).get_next(datetime).astimezone(UTC)


def five_fields(expression: str) -> str:
    """The expression as standard five-field cron, for Kubernetes and CI schedules."""
    fields = check(expression).split()
    if len(fields) == 5:
        return " ".join(fields)
    if fields[0] != "0":
        raise InvalidCron(
            expression,
            "a seconds field runs only on the embedded scheduler; Kubernetes CronJobs and CI "
            "schedules fire at most once a minute (use 5 fields, or 0 seconds)",
        )
    return " ".join(fields[1:])
