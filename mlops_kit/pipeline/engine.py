"""The step engine: named steps with declared inputs and outputs, cached by content, retried.

A :class:`Step` is a library function ``func(context, **inputs) -> {output: value}``. The
engine runs the steps in order; each step's *key* is the sha256 of its code identity (module,
name and the module's source), its parameters, the digests of its inputs and of whatever it
reads from outside (``watch``: e.g. the data files). A step whose key has stored outputs is not
run again: it is reported ``cached`` and its outputs are read from the store when needed.
Outputs are serialized and stored by their own sha256, so a step that re-runs and yields the
same bytes leaves its downstream steps cached.

A retryable step that raises is retried with exponential backoff (``backoff``, doubling, up to
``max_backoff``); a configuration error is never retried. A step that fails for good raises
:class:`~mlops_kit.errors.StepFailed` naming it; the steps before it keep their stored outputs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import pickle  # noqa: S403 - the project's own store; every blob is checked against its sha256
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_kit import display
from mlops_kit.errors import ConfigError, StepFailed, StepMisconfigured, ToolkitError
from mlops_kit.pipeline.records import RunRecord, StepRecord
from mlops_kit.pipeline.store import ContentStore

StepFunction = Callable[..., Mapping[str, Any] | Any]
Progress = Callable[[StepRecord], None]


@dataclass(frozen=True)
class Step:
    """One named step: what it takes, what it gives, how it is retried and cached."""

    name: str
    func: StepFunction
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    """Handed to the function as ``context.params``; part of the cache key (JSON-able)."""
    retryable: bool = False
    retries: int = 2
    """Retries after the first attempt, when retryable."""
    backoff: float = 1.0
    max_backoff: float = 60.0
    cache: bool = True
    watch: Callable[[], str] | None = None
    """A digest of what the step reads from outside its inputs (files, a bucket), or None."""

    def code_identity(self) -> str:
        """``module:qualname`` and the sha256 of the module's source: edits invalidate the cache."""
        func = inspect.unwrap(self.func)
        name = f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(func))}"
        module = sys.modules.get(getattr(func, "__module__", ""), None)
        try:
            source = inspect.getsource(module) if module is not None else ""
        except (OSError, TypeError):
            source = ""
        return f"{name}@{hashlib.sha256(source.encode()).hexdigest()[:16]}"

    def key(self, input_digests: Mapping[str, str]) -> str:
        """The step's cache key for inputs with these digests."""
        material = {
            "code": self.code_identity(),
            "params": self.params,
            "inputs": dict(sorted(input_digests.items())),
            "watch": self.watch() if self.watch is not None else None,
        }
        text = json.dumps(material, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StepContext:
    """What a step function gets besides its inputs."""

    step: str
    params: Mapping[str, Any]
    attempt: int
    """1 on the first attempt, 2 on the first retry, …"""
    run_id: str
    store: ContentStore
    outputs: Mapping[str, str] = field(default_factory=dict)
    """sha256 of every output given so far in the run, by name."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """What the caller hands every step (the project, for the built-in steps)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["extra"][name]
        except KeyError:
            raise AttributeError(name) from None


class Artifact:
    """A step output: its digest, and its value, read from the store on first use."""

    _UNSET: Any = object()

    def __init__(self, digest: str, store: ContentStore, value: Any = _UNSET) -> None:
        self.digest = digest
        self._store = store
        self._value = value

    @property
    def value(self) -> Any:
        if self._value is Artifact._UNSET:
            # Checked against its sha256 by the store before it is unpickled.
            self._value = pickle.loads(self._store.get(self.digest))  # noqa: S301
        return self._value


@dataclass
class PipelineRun(display.Rich):
    """What a run produced: its record and every output by name; shows as its record."""

    record: RunRecord
    artifacts: dict[str, Artifact]

    def _repr_html_(self) -> str:
        return self.record._repr_html_()

    def _figure_(self) -> display.Figure:
        return self.record._figure_()

    def output(self, name: str) -> Any:
        """The value of the output ``name`` (the last step that gave it)."""
        if name not in self.artifacts:
            raise KeyError(f"no step gave an output {name!r}; outputs: {', '.join(self.artifacts)}")
        return self.artifacts[name].value

    def digests(self) -> dict[str, str]:
        """Every output's sha256, by name."""
        return {name: a.digest for name, a in self.artifacts.items()}


def check_steps(steps: Iterable[Step]) -> list[Step]:
    """The steps in order, each input given by an earlier step; ConfigError otherwise."""
    available: set[str] = set()
    names: set[str] = set()
    ordered: list[Step] = []
    for step in steps:
        if step.name in names:
            raise ConfigError(f"pipeline step {step.name!r} appears twice")
        missing = [i for i in step.inputs if i not in available]
        if missing:
            raise ConfigError(
                f"pipeline step {step.name!r} takes {', '.join(missing)}, which no step before "
                f"it gives (given so far: {', '.join(sorted(available)) or 'nothing'})"
            )
        names.add(step.name)
        available.update(step.outputs)
        ordered.append(step)
    return ordered


def run(
    steps: Iterable[Step],
    store: ContentStore,
    *,
    extra: Mapping[str, Any] | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PipelineRun:
    """Run ``steps`` in order; the record is stored under ``runs/<run id>.json`` either way.

    ``extra`` is handed to every step in its context; ``use_cache=False`` runs every step (and
    stores what it gives); ``progress`` is called with each step's record as the step ends.
    """
    ordered = check_steps(steps)
    record = RunRecord(run_id=uuid.uuid4().hex[:12])
    artifacts: dict[str, Artifact] = {}
    try:
        for step in ordered:
            inputs = {name: artifacts[name] for name in step.inputs}
            step_record = _run_step(step, inputs, store, record, artifacts, extra, use_cache, sleep)
            if progress is not None:
                progress(step_record)
        record.finish("succeeded")
    except BaseException:
        record.finish("failed")
        if progress is not None and record.steps and record.steps[-1].status == "failed":
            progress(record.steps[-1])
        raise
    finally:
        store.put_json(f"runs/{record.run_id}.json", record.to_json())
    return PipelineRun(record, artifacts)


def _run_step(
    step: Step,
    inputs: dict[str, Artifact],
    store: ContentStore,
    record: RunRecord,
    artifacts: dict[str, Artifact],
    extra: Mapping[str, Any] | None,
    use_cache: bool,
    sleep: Callable[[float], None],
) -> StepRecord:
    started = time.monotonic()
    key = step.key({name: a.digest for name, a in inputs.items()})
    entry_key = f"steps/{step.name}/{key}.json"
    cached = store.get_json(entry_key) if use_cache and step.cache else None
    if cached is not None and all(store.has(d) for d in cached["outputs"].values()):
        outputs = {name: Artifact(d, store) for name, d in cached["outputs"].items()}
        artifacts.update(outputs)
        return record.add(StepRecord(step.name, "cached", 0.0, 0, key, _digests(outputs)))
    attempts = 0
    while True:
        attempts += 1
        digests = _digests(artifacts)
        context = StepContext(
            step.name, step.params, attempts, record.run_id, store, digests, extra or {}
        )
        try:
            values = step.func(context, **{n: a.value for n, a in inputs.items()})
            outputs = _store_outputs(step, values, store)
            break
        except Exception as exc:
            final = not step.retryable or attempts > step.retries or isinstance(exc, ConfigError)
            if final:
                elapsed = time.monotonic() - started
                record.add(StepRecord(step.name, "failed", elapsed, attempts, key, {}, _why(exc)))
                # A configuration error keeps its exit code (2) and its kind.
                kind = StepMisconfigured if isinstance(exc, ConfigError) else StepFailed
                raise kind(step.name, attempts, _why(exc)) from exc
            sleep(min(step.backoff * 2 ** (attempts - 1), step.max_backoff))
    store.put_json(entry_key, {"step": step.name, "outputs": _digests(outputs)})
    artifacts.update(outputs)
    elapsed = time.monotonic() - started
    return record.add(StepRecord(step.name, "ran", elapsed, attempts, key, _digests(outputs)))


def _store_outputs(step: Step, values: Any, store: ContentStore) -> dict[str, Artifact]:
    if not isinstance(values, Mapping):
        if len(step.outputs) != 1:
            raise TypeError(f"returned {type(values).__name__}, not a mapping of its outputs")
        values = {step.outputs[0]: values}
    missing = [name for name in step.outputs if name not in values]
    if missing:
        raise TypeError(f"did not return its outputs {', '.join(missing)}")
    outputs = {}
    for name in step.outputs:
        digest = store.put(pickle.dumps(values[name], protocol=5))
        outputs[name] = Artifact(digest, store, values[name])
    return outputs


def _digests(outputs: Mapping[str, Artifact]) -> dict[str, str]:
    return {name: a.digest for name, a in outputs.items()}


def _why(exc: BaseException) -> str:
    if isinstance(exc, ToolkitError):
        return exc.message
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
