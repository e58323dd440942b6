"""Running a load test: against one URL (:func:`run_load`) or an environment (:func:`load_test`).

Every run is bounded three ways — duration, users and a total request cap — checked against the
configured :class:`~mlops_kit.settings_loadtest.LoadLimits`; the generator stops itself at the
first bound reached, and is killed if it overstays. Only loopback hosts are loaded unless
``allow_remote``.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from mlops_kit.errors import (
    EndpointUnavailable,
    LoadTestError,
    MissingDependencyError,
    ToolkitError,
)
from mlops_kit.settings_loadtest import LoadLimits
from mlops_kit.verify.loadtest import child
from mlops_kit.verify.loadtest.results import LoadTestResult, LoadTestRun
from mlops_kit.verify.loadtest.spec import LoadSpec, check_host

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.verify.monitoring import MetricsSnapshot


def preflight(url: str, body: str, timeout: float) -> None:
    """One request before the load: fail fast (EndpointUnavailable) if it is not answered 2xx."""
    import httpx

    from mlops_kit.verify.v2 import error_message

    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.post(
                url, content=body.encode(), headers={"Content-Type": "application/json"}
            )
    except httpx.TimeoutException:
        raise EndpointUnavailable(url, f"did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise EndpointUnavailable(
            url,
            f"does not answer ({type(exc).__name__}: {exc}); is it deployed and running? "
            "(`mlops-kit status`)",
        ) from None
    if not 200 <= response.status_code < 300:
        raise EndpointUnavailable(
            url, f"answered HTTP {response.status_code}: {error_message(response)}"
        )


def run_load(
    spec: LoadSpec,
    *,
    limits: LoadLimits | None = None,
    allow_remote: bool = False,
    progress: bool = True,
    check_first: bool = True,
) -> LoadTestResult:
    """Load ``spec.url`` as ``spec`` says, within ``limits``; blocks until the load is over.

    ``check_first`` sends one request first and raises EndpointUnavailable unless it gets a 2xx
    answer. The run never outlasts ``spec.duration_s`` by more than a request timeout (plus
    the generator's start-up); LoadTestError if the generator fails or has to be killed.
    """
    spec = spec.checked(limits or LoadLimits())
    check_host(spec.url, allow_remote=allow_remote)
    if importlib.util.find_spec("locust") is None:
        raise MissingDependencyError("locust", "load")
    if check_first:
        preflight(spec.url, spec.body, min(spec.timeout_s or 5.0, 5.0))
    return child.generate(spec, progress)


def request_body(project: Project, version: str) -> str:
    """A V2 request body from the registered version's saved input example."""
    from mlflow.models import Model

    from mlops_kit.registry.client import Registry
    from mlops_kit.verify.v2 import encode_dataframe

    path = str(Registry(project).local_path(version))
    example = Model.load(path).load_input_example(path)
    if example is None:
        raise LoadTestError(
            f"{project.model_name} v{version} has no saved input example to send; log the "
            "model with input_example=..."
        )
    import pandas as pd

    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    return json.dumps(encode_dataframe(frame))


def load_test(
    project: Project,
    environment: str,
    *,
    users: int = 10,
    spawn_rate: float = 10.0,
    duration_s: float = 5.0,
    rate: float | None = None,
    max_requests: int | None = None,
    allow_remote: bool | None = None,
    progress: bool = True,
) -> LoadTestRun:
    """Load-test what ``environment`` serves, with server metrics scraped before and after.

    The request is the served version's own input example. Raises EndpointUnavailable at once if
    nothing is served or the endpoint does not answer; bounds come from ``load_test.limits``.
    """
    from mlops_kit import targets
    from mlops_kit.verify.monitoring import scrape, server_figures

    settings = project.settings
    if allow_remote is None:
        allow_remote = settings.load_test.allow_remote
    model = project.model_name
    with targets.for_environment(settings, environment) as target:
        status = target.status(model)
        if status is None or not status.ready or not status.endpoint or not status.version:
            detail = "is not deployed" if status is None else (status.detail or "is not ready")
            where = status.endpoint if status and status.endpoint else f"{environment}/{model}"
            raise EndpointUnavailable(where, f"{detail} (environment {environment!r})")
        metrics_url = status.metrics_url
    from mlops_kit.verify.v2 import infer_url

    url = infer_url(status.endpoint, model)
    spec = LoadSpec(
        url=url,
        body=request_body(project, status.version),
        users=users,
        spawn_rate=spawn_rate,
        duration_s=duration_s,
        rate=rate,
        max_requests=max_requests,
    )
    limits = settings.load_test.limits
    spec.checked(limits)  # refuse bad parameters before touching the server
    before: MetricsSnapshot | None = None
    note = (
        ""
        if metrics_url
        else f"target {settings.environment(environment).target!r} exposes no metrics URL"
    )
    if metrics_url:
        try:
            before = scrape(metrics_url)
        except ToolkitError as exc:
            note = str(exc)
    result = run_load(spec, limits=limits, allow_remote=allow_remote, progress=progress)
    figures = None
    if before is not None and metrics_url:
        try:
            figures = server_figures(before, scrape(metrics_url), model)
        except ToolkitError as exc:
            note = str(exc)
        else:
            # The scrapes also span the generator's start-up, when the server idles: rates are
            # per second of load.
            figures = replace(figures, seconds=result.elapsed_s)
    return LoadTestRun(environment, model, status.version, url, result, figures, note)
