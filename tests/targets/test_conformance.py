"""The deployment-target contract, one suite for every registered target.

Each target is driven through its real backend: the local target starts real MLServer
processes on loopback; the Kubernetes target talks to the stateful API emulator through the
real ``kubernetes`` client while a play operator reports Seldon's status; the SageMaker target
talks to moto's server (with UpdateEndpoint added) through the real boto3 clients. A target
registered without a harness here fails the suite: joining the registry means passing the
contract.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlops_kit import targets
from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, TargetError, ToolkitError, UnsupportedSpec
from mlops_kit.settings import KubernetesSettings, Settings, load_settings
from mlops_kit.targets import DeploymentStatus, DeploymentTarget
from tests.support.k8s_emulator import KubeEmulator, PlayOperator, ensure_namespace

if TYPE_CHECKING:
    from tests.support.serving import Models

pytest_plugins = ["tests.support.serving"]
pytestmark = pytest.mark.slow

MODEL = "conformance"


@dataclass
class Harness:
    """How to reach one target's real backend from a test."""

    make: Callable[[str], DeploymentTarget]
    """A target for an environment (``staging`` or ``production``) of one project."""
    spec: Callable[[str], DeploymentSpec]
    """A spec of version ``"1"`` or ``"2"`` this target can serve, for ``staging``."""


def environments(target: str) -> list[dict[str, str]]:
    return [
        {"name": "staging", "kind": "staging", "target": target},
        {"name": "production", "kind": "production", "target": target},
    ]


@contextlib.contextmanager
def local_harness(root: Path, models: Models) -> Iterator[Harness]:
    from mlops_kit.targets.local import stop_all

    settings = load_settings(state_dir=root / ".mlops", environments=environments("local"))
    uris = {"1": models.v1, "2": models.v2}

    def spec(version: str) -> DeploymentSpec:
        return DeploymentSpec(
            environment="staging", model_name=MODEL, version=version, model_uri=str(uris[version])
        )

    try:
        yield Harness(lambda env: targets.for_environment(settings, env), spec)
    finally:
        stop_all(settings.state_dir)


@contextlib.contextmanager
def kubernetes_harness(root: Path, models: Models) -> Iterator[Harness]:
    with KubeEmulator() as emulator, PlayOperator(emulator):
        kubeconfig = emulator.write_kubeconfig(root / "kubeconfig")
        for namespace in ("mlops-demo-staging", "mlops-demo-production"):
            ensure_namespace(emulator, namespace)
        settings = load_settings(
            state_dir=root / ".mlops",
            environments=environments("kubernetes"),
            kubernetes=KubernetesSettings(
                kubeconfig=kubeconfig, poll_interval=0.02, ingress_url="http://ingress.example"
            ),
        )

        def spec(version: str) -> DeploymentSpec:
            uri = f"s3://models/{MODEL}/{version}"
            return DeploymentSpec(
                environment="staging", model_name=MODEL, version=version, model_uri=uri
            )

        yield Harness(lambda env: targets.for_environment(settings, env), spec)


@contextlib.contextmanager
def sagemaker_harness(root: Path, models: Models) -> Iterator[Harness]:
    import os

    from mlops_kit.settings_sagemaker import SageMakerSettings
    from tests.support import sagemaker_server
    from tests.support.aws import moto_server

    with moto_server() as server:
        server.reset()  # moto's backends are per process: start from an empty account
        before = {key: os.environ.get(key) for key in server.environment}
        os.environ.update(server.environment)
        sagemaker_server.install(server.url)
        config = SageMakerSettings(poll_interval=0.02)
        server.client("s3").create_bucket(Bucket=config.bucket)
        settings = load_settings(
            state_dir=root / ".mlops", environments=environments("sagemaker"), sagemaker=config
        )
        uris = {"1": models.v1, "2": models.v2}

        def spec(version: str) -> DeploymentSpec:
            return DeploymentSpec(
                environment="staging",
                model_name=MODEL,
                version=version,
                model_uri=str(uris[version]),
            )

        try:
            yield Harness(lambda env: targets.for_environment(settings, env), spec)
        finally:
            sagemaker_server.reset()
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


HARNESSES = {
    "local": local_harness,
    "kubernetes": kubernetes_harness,
    "sagemaker": sagemaker_harness,
}


def test_every_registered_target_has_a_harness():
    assert set(targets.names()) <= set(HARNESSES), "a target joins the registry with a harness"


@pytest.fixture(scope="module", params=sorted(HARNESSES))
def harness(request, tmp_path_factory, models: Models) -> Iterator[Harness]:
    root = tmp_path_factory.mktemp(request.param)
    with HARNESSES[request.param](root, models) as made:
        yield made


@pytest.fixture(scope="module")
def deployed(harness: Harness) -> Iterator[tuple[DeploymentTarget, DeploymentStatus]]:
    """Version 1 applied in staging for the whole module; tests leave it so."""
    target = harness.make("staging")
    status = target.apply(harness.spec("1"))
    yield target, status
    target.delete(MODEL)
    target.close()


def test_apply_blocks_until_the_version_is_ready(deployed):
    target, status = deployed
    assert (status.environment, status.model_name) == ("staging", MODEL)
    assert status.ready and status.version == "1"
    assert status.endpoint and status.protocol in ("v2", "seldon")
    assert target.endpoint(MODEL) == status.endpoint
    observed = target.status(MODEL)
    assert observed is not None and observed.ready and observed.version == "1"
    assert [s.model_name for s in target.list()] == [MODEL]


def test_applying_the_served_spec_again_changes_nothing(deployed, harness):
    target, _ = deployed
    again = target.apply(harness.spec("1"))
    assert again.ready and again.version == "1"
    assert [s.model_name for s in target.list()] == [MODEL]


def test_a_spec_of_another_environment_is_refused_and_nothing_changes(deployed, harness):
    target, _ = deployed
    elsewhere = harness.spec("2").model_copy(update={"environment": "production"})
    with pytest.raises(UnsupportedSpec, match="belongs to environment 'production'") as caught:
        target.apply(elsewhere)
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, TargetError)
    assert caught.value.exit_code == 2
    assert target.status(MODEL).version == "1"  # type: ignore[union-attr]


def unsupported(target: DeploymentTarget, spec: DeploymentSpec) -> list[dict]:
    """Spec changes the target's capabilities say it cannot honour."""
    caps = target.capabilities
    changes: list[dict] = []
    if caps.max_replicas is not None:
        changes.append({"replicas": caps.max_replicas + 1})
    if caps.min_replicas > 0:
        changes.append({"replicas": caps.min_replicas - 1})
    if not caps.traffic_split:
        changes.append({"traffic": 50})
    changes += [
        {"flavour": f}
        for f in ("mlflow", "sklearn", "custom", "embedded")
        if f not in caps.flavours
    ]
    return [c for c in changes if target.problems(spec.model_copy(update=c))]


def test_what_a_target_cannot_honour_is_refused_never_ignored(deployed, harness):
    target, _ = deployed
    spec = harness.spec("2")
    for change in unsupported(target, spec):
        with pytest.raises(UnsupportedSpec):
            target.apply(spec.model_copy(update=change))
    assert not target.problems(spec)
    assert target.status(MODEL).version == "1"  # type: ignore[union-attr]


def test_absent_models(deployed):
    target, _ = deployed
    assert target.status("absent") is None
    with pytest.raises(TargetError):
        target.endpoint("absent")
    target.delete("absent")  # idempotent on what never existed


def test_a_preview_serves_the_candidate_privately_or_says_it_cannot(deployed, harness):
    target, live = deployed
    candidate_spec = harness.spec("2").model_copy(update=_uri(harness, "2"))
    with target.preview(candidate_spec) as candidate:
        if not target.capabilities.preview:
            assert candidate is None
            return
        assert candidate is not None and candidate.ready and candidate.version == "2"
        assert candidate.endpoint != live.endpoint
        assert target.status(MODEL).version == "1"  # clients still reach only the live version
    assert target.status(MODEL).version == "1"
    assert [s.model_name for s in target.list()] == [MODEL]


def test_update_then_delete_idempotently(harness):
    with harness.make("production") as target:
        spec = harness.spec("1").model_copy(update={"environment": "production"})
        assert target.apply(spec).version == "1"
        updated = target.apply(spec.model_copy(update={"version": "2", **_uri(harness, "2")}))
        assert updated.ready and updated.version == "2"
        target.delete(MODEL)
        assert target.status(MODEL) is None
        target.delete(MODEL)
        assert target.list() == []


def _uri(harness: Harness, version: str) -> dict[str, str]:
    return {"model_uri": harness.spec(version).model_uri}


def test_setup_hook_and_environment_description(harness):
    with harness.make("staging") as target:
        cls = type(target)
        assert isinstance(cls.describe(target.settings, target.environment), dict)
        with pytest.raises(ConfigError, match="no set-up options"):
            cls.setup(None, [], None, no_such_option=True)  # type: ignore[arg-type]


# -- the public methods wrap any backend failure --------------------------------------------


class Exploding(DeploymentTarget):
    """A target whose backend raises plain exceptions: the contract must not let them out."""

    name = "exploding"

    def _apply(self, spec, *, timeout):
        raise RuntimeError("backend down")

    def _delete(self, model_name):
        raise OSError("disk gone")

    def _status(self, model_name):
        raise KeyError(model_name)

    def _list(self):
        raise ValueError("bad page")

    def _endpoint(self, model_name):
        raise ConfigError("already a toolkit error")


def test_backend_failures_reach_callers_as_target_errors():
    settings = Settings(environments=environments("local"))
    target = Exploding(settings, settings.environment("staging"))
    spec = DeploymentSpec(environment="staging", model_name="m", version="1", model_uri="/m")
    for call, cause in (
        (lambda: target.apply(spec), RuntimeError),
        (lambda: target.delete("m"), OSError),
        (lambda: target.status("m"), KeyError),
        (lambda: target.list(), ValueError),
    ):
        with pytest.raises(TargetError, match="exploding target: .* failed") as caught:
            call()
        assert isinstance(caught.value.__cause__, cause)
    with pytest.raises(ConfigError, match="already a toolkit error"):
        target.endpoint("m")
    assert issubclass(UnsupportedSpec, ToolkitError)


def test_teardown_does_nothing_unless_confirmed(project):
    from mlops_kit.targets import setup

    report = setup.teardown(project)
    assert not report.confirmed and report.removed == {}
    assert "teardown skipped" in report._repr_html_()
