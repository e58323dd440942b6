"""The step engine: content-addressed cache, retries with backoff, failures that name the step."""

import pytest

from mlops_kit.errors import ConfigError, SnapshotCorrupt, StepFailed, StepMisconfigured
from mlops_kit.pipeline import engine
from mlops_kit.pipeline.engine import Step
from mlops_kit.pipeline.store import ContentStore


def load(ctx):
    return {"numbers": list(range(ctx.params["n"]))}


def double(ctx, numbers):
    return {"doubled": [ctx.params.get("factor", 2) * x for x in numbers]}


def total(ctx, doubled):
    return sum(doubled)


def chain(n=5, **double_params):
    return [
        Step("load", load, outputs=("numbers",), params={"n": n}),
        Step("double", double, ("numbers",), ("doubled",), params=double_params),
        Step("total", total, ("doubled",), ("total",)),
    ]


@pytest.fixture
def store(tmp_path):
    return ContentStore(str(tmp_path / "store"))


def test_a_rerun_reports_every_step_cached_and_gives_the_same_outputs(store):
    first = engine.run(chain(), store)
    assert [s.status for s in first.record.steps] == ["ran", "ran", "ran"]
    assert first.output("total") == 20
    lines = []
    second = engine.run(chain(), store, progress=lambda s: lines.append(s.line()))
    assert second.record.cached == ["load", "double", "total"]
    assert all("cached" in line for line in lines)
    assert second.output("total") == 20 and second.digests() == first.digests()
    # Both runs are recorded in the store.
    assert len(store.keys("runs/")) == 2


def test_a_changed_parameter_reruns_only_that_step_and_what_follows(store):
    engine.run(chain(), store)
    rerun = engine.run(chain(factor=3), store)
    assert [s.status for s in rerun.record.steps] == ["cached", "ran", "ran"]
    assert rerun.output("total") == 30
    # The same bytes out of a re-run step leave the steps after it cached.
    again = engine.run(chain(factor=3, note="same output"), store)
    assert [s.status for s in again.record.steps] == ["cached", "ran", "cached"]


def test_without_the_cache_every_step_runs(store):
    engine.run(chain(), store)
    assert engine.run(chain(), store, use_cache=False).record.cached == []


class Flaky:
    """Fails ``failures`` times, then succeeds."""

    def __init__(self, failures):
        self.failures, self.calls = failures, 0

    def __call__(self, ctx, numbers):
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"storage unreachable (attempt {ctx.attempt})")
        return {"doubled": numbers}


def test_a_retryable_step_failing_twice_is_retried_with_backoff_and_the_run_succeeds(store):
    waits = []
    flaky = Flaky(2)
    steps = [chain()[0], Step("double", flaky, ("numbers",), ("doubled",), retryable=True,
                              retries=3, backoff=0.5)]  # fmt: skip
    result = engine.run(steps, store, sleep=waits.append)
    assert result.record.status == "succeeded"
    assert result.record.step("double").attempts == 3 and flaky.calls == 3
    assert waits == [0.5, 1.0]


def test_a_retryable_step_gives_up_after_its_retries(store):
    steps = [chain()[0], Step("double", Flaky(9), ("numbers",), ("doubled",), retryable=True,
                              retries=2, backoff=0.01, max_backoff=0.01)]  # fmt: skip
    with pytest.raises(StepFailed, match="'double' failed after 3 attempts: ConnectionError"):
        engine.run(steps, store, sleep=lambda s: None)


def test_a_failing_step_names_itself_is_not_retried_and_loses_nothing(store):
    flaky = Flaky(1)
    steps = [chain()[0], Step("double", flaky, ("numbers",), ("doubled",)), chain()[2]]
    shown = []
    with pytest.raises(StepFailed, match="pipeline step 'double' failed: ConnectionError") as err:
        engine.run(steps, store, progress=lambda s: shown.append(s.line()))
    assert err.value.step == "double" and flaky.calls == 1
    assert shown[-1].startswith("double       failed in") and "ConnectionError" in shown[-1]
    (failed,) = [store.get_json(k) for k in store.keys("runs/")]
    assert failed["status"] == "failed"
    assert [s["status"] for s in failed["steps"]] == ["ran", "failed"]
    # The re-run starts where it failed: what ran before is cached.
    rerun = engine.run(steps, store)
    assert [s.status for s in rerun.record.steps] == ["cached", "ran", "ran"]


def test_a_configuration_error_is_never_retried(store):
    def bad(ctx, numbers):
        raise ConfigError("no such column")

    steps = [chain()[0], Step("double", bad, ("numbers",), ("doubled",), retryable=True)]
    with pytest.raises(StepMisconfigured, match="'double' failed: no such column") as err:
        engine.run(steps, store, sleep=lambda s: pytest.fail("retried"))
    assert err.value.exit_code == 2 and isinstance(err.value, ConfigError)


def test_a_step_must_return_its_declared_outputs(store):
    steps = [Step("load", lambda ctx: {"other": 1}, outputs=("numbers",))]
    with pytest.raises(StepFailed, match="'load' failed: TypeError: did not return .*numbers"):
        engine.run(steps, store)


def test_inputs_no_step_gives_are_refused_before_anything_runs(store):
    with pytest.raises(ConfigError, match="'total' takes doubled, which no step before it gives"):
        engine.run([chain()[0], chain()[2]], store)


def test_a_corrupt_output_is_detected_by_its_digest(store, tmp_path):
    first = engine.run(chain(), store)
    digest = first.digests()["doubled"]
    blob = tmp_path / "store" / "objects" / digest[:2] / digest
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    rerun = engine.run(chain(), store)
    with pytest.raises(SnapshotCorrupt, match=digest[:12]):
        rerun.output("doubled")


def test_the_record_shows_as_a_table_and_a_chart(store):
    result = engine.run(chain(), store)
    html = result.record._repr_html_()
    assert "cache hit" in html and "attempts" in html and "succeeded" in html
    assert result.record.chart().axes[0].get_title().endswith("succeeded")
    assert result.record._figure_().text.startswith("3 steps: 3 ran")
