"""The training pipeline of a project: the built-in steps, the project's own, run by the engine.

:func:`steps` assembles ingest → validate → preprocess → train → evaluate → register with the
retries and parameters of ``pipeline:``, replacing or adding the steps the project file names
by entrypoint (``pipeline.steps.<name>.entrypoint: "package.module:function"``); :func:`run`
runs them, reporting each step as it ends (:class:`StepProgress`), and returns the run with its
record.

A project whose first environment is on SageMaker trains in a SageMaker training job: there
``train`` is the job (which registers its model, then snapshotted), and ``evaluate`` and
``register`` are not run.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError
from mlops_kit.pipeline import engine
from mlops_kit.pipeline import steps as builtin
from mlops_kit.pipeline.engine import PipelineRun, Step
from mlops_kit.pipeline.records import StepRecord
from mlops_kit.pipeline.store import ContentStore
from mlops_kit.settings_pipeline import BUILTIN_STEPS

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.settings_pipeline import StepSettings
    from mlops_kit.settings_training import TrainingSettings

RETRYABLE = frozenset({"ingest", "register"})
"""Built-in steps that reach storage or the registry, whose failures may pass."""


def _builtin(project: Project, training: TrainingSettings) -> list[Step]:
    """The built-in steps, each keyed by exactly the settings it reads."""
    t = training.model_dump(mode="json")
    target = training.data.target if training.data is not None else builtin.TARGET
    data = {"dataset": None if t["data"] else t["dataset"], "data": t["data"]}
    expectations = project.settings.pipeline.expectations.model_dump(mode="json")
    split = {k: t[k] for k in ("task", "test_size", "random_state")}
    fit = {"entrypoint": t["entrypoint"], "params": training.entrypoint_params(), "task": t["task"]}
    registry = {"model": project.model_name, "registry": project.tracking_uri, "training": t}
    return [
        Step("ingest", builtin.ingest, (), ("table", "inputs"), data,
             watch=lambda: builtin.data_digest(training.data, training.dataset)),
        Step("validate", builtin.validate, ("table",), ("report",),
             {"target": target, "expect": expectations}),
        Step("preprocess", builtin.preprocess, ("table",), ("dataset",), {**data, **split}),
        Step("train", builtin.train, ("dataset",), ("model",), fit,
             watch=lambda: _entrypoint_digest(project, training.entrypoint)),
        Step("evaluate", builtin.evaluate, ("model", "dataset"), ("metrics",)),
        Step("register", builtin.register, ("model", "dataset", "metrics", "inputs"),
             ("registration",), registry),
    ]  # fmt: skip


def _on_sagemaker(project: Project, training: TrainingSettings) -> list[Step]:
    first = _builtin(project, training)[:3]
    params = {"training": training.model_dump(mode="json"), "model": project.model_name}
    job = Step("train", _sagemaker_job, ("dataset", "inputs"), ("registration",), params)
    return [*first, job]


def _sagemaker_job(context: engine.StepContext, dataset: Any, inputs: list[Any]) -> dict[str, Any]:
    from mlops_kit.pipeline import snapshots
    from mlops_kit.targets.setup import train

    project, training = context.project, context.training
    result = train(project, dataset, training)
    snapshots.create(project, context.store, result, training, inputs, dict(context.outputs))
    return {"registration": result}


def _entrypoint_digest(project: Project, spec: str) -> str:
    """sha256 of the source of the entrypoint's module: editing the code re-runs ``train``."""
    from mlops_kit.train.entrypoint import resolve

    function = resolve(spec, project.settings.project_dir)
    try:
        source = inspect.getsource(sys.modules[function.__module__])
    except (OSError, TypeError, KeyError):
        source = spec
    return hashlib.sha256(source.encode()).hexdigest()


def steps(project: Project, training: TrainingSettings) -> list[Step]:
    """The project's steps, in order: built-in ones replaced or tuned, added ones placed."""
    pipeline = project.settings.pipeline
    on_sagemaker = project.settings.environments[0].target == "sagemaker"
    ordered = _on_sagemaker(project, training) if on_sagemaker else _builtin(project, training)
    by_name = {step.name: step for step in ordered}
    for name, custom in pipeline.steps.items():
        if name in BUILTIN_STEPS and name not in by_name:
            continue  # evaluate/register on SageMaker: the job does them
        base = by_name.get(name)
        step = _configured(project, name, custom, base)
        if base is not None:
            ordered[ordered.index(base)] = step
        else:
            anchor = custom.after or ordered[-2].name
            if anchor not in [s.name for s in ordered]:
                raise ConfigError(f"pipeline.steps.{name}.after: no step named {anchor!r}")
            ordered.insert([s.name for s in ordered].index(anchor) + 1, step)
        by_name[name] = step
    retries = {"retries": pipeline.retries, "backoff": pipeline.backoff,
               "max_backoff": pipeline.max_backoff}  # fmt: skip
    return [
        _with(step, retries, pipeline.steps.get(step.name), retryable=step.name in RETRYABLE)
        for step in ordered
    ]


def _configured(project: Project, name: str, custom: StepSettings, base: Step | None) -> Step:
    from mlops_kit.train.entrypoint import resolve

    func = base.func if base is not None else None
    if custom.entrypoint is not None:
        func = resolve(custom.entrypoint, project.settings.project_dir)
    assert func is not None  # settings refuse an added step without an entrypoint
    inputs = custom.inputs if custom.inputs is not None else (base.inputs if base else [])
    outputs = custom.outputs if custom.outputs is not None else (base.outputs if base else [])
    params = {**(base.params if base else {}), **custom.params}
    watch = base.watch if base is not None and custom.entrypoint is None else None
    return Step(name, func, tuple(inputs), tuple(outputs), params, watch=watch)


def _with(
    step: Step, retries: dict[str, Any], custom: StepSettings | None, *, retryable: bool
) -> Step:
    from dataclasses import replace

    if custom is not None and custom.retryable is not None:
        retryable = custom.retryable
    if custom is not None and custom.retries is not None:
        retries = {**retries, "retries": custom.retries}
    return replace(step, retryable=retryable, **retries)


class StepProgress:
    """A run's progress, reported as each step ends: a line per step on stderr in a terminal;
    in a notebook one bar on stdout that fills, whose last state is what its report keeps."""

    def __init__(self, total: int) -> None:
        self._bar: Any = None
        if _in_kernel():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                file=sys.stdout,
                bar_format="pipeline: {n}/{total} steps |{bar}| {desc}",  # desc: the last step
            )

    def __call__(self, record: StepRecord) -> None:
        if self._bar is None:
            sys.stderr.write(record.line() + "\n")
            sys.stderr.flush()
            return
        self._bar.set_description_str(" ".join(record.line().split()), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (a notebook, papermill), not a terminal."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def run(
    project: Project,
    training: TrainingSettings,
    *,
    use_cache: bool | None = None,
    progress: bool = True,
    until: str | None = None,
) -> PipelineRun:
    """Run the project's training pipeline; ``until`` stops after that step (not registering).

    ``use_cache`` None: as ``pipeline.cache`` says. StepFailed names a step that failed.
    """
    ordered = steps(project, training)
    if until is not None:
        names = [s.name for s in ordered]
        if until not in names:
            raise ConfigError(f"no pipeline step named {until!r}; steps: {', '.join(names)}")
        ordered = ordered[: names.index(until) + 1]
    cache = project.settings.pipeline.cache if use_cache is None else use_cache
    shown = StepProgress(len(ordered)) if progress else None
    try:
        return engine.run(
            ordered,
            ContentStore.for_project(project),
            extra={"project": project, "training": training},
            use_cache=cache,
            progress=shown,
        )
    finally:
        if shown is not None:
            shown.close()
