"""The Kubernetes target: Seldon Core deployments applied and awaited in a namespace.

A deployment is the document :func:`mlops_kit.gitops.manifests.render` makes of its spec,
server-side applied; with ``gitops.manifest: seldon-v2`` a spec with ``traffic`` below 100
becomes a canary Model beside the stable one and an ``Experiment`` splitting the traffic.

A spec's ``candidate`` (a progressive rollout's second version) is rendered by
:mod:`mlops_kit.gitops.candidates`: a second predictor with the weights in ``traffic`` (a
``shadow: true`` one for a mirror) in the one SeldonDeployment; on Seldon v2 the candidate's
Model ``<model>-canary`` and an ``Experiment`` with the weights (or a ``mirror``). A rollout
moves the weights by committing specs that differ only in ``candidate.weight`` and syncing.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError, DeploymentTimeout, TargetError, WaitTimeout
from mlops_kit.gitops import candidates, manifests
from mlops_kit.process import wait_until
from mlops_kit.targets.base import DeploymentStatus, DeploymentTarget
from mlops_kit.targets.kubernetes.cluster import Cluster, cluster_settings
from mlops_kit.targets.kubernetes.crds import CRD_FOR_FORMAT, SELDON_EXPERIMENT, SELDON_MODEL, Crd
from mlops_kit.targets.kubernetes.endpoints import endpoint_url, namespace_for
from mlops_kit.targets.kubernetes.readiness import (
    managed,
    predictor_readiness,
    readiness,
    version_of,
)

if TYPE_CHECKING:
    from mlops_kit.deployment import Candidate, DeploymentSpec
    from mlops_kit.project import Project
    from mlops_kit.settings import EnvironmentSettings, KubernetesSettings, Settings
    from mlops_kit.targets.base import SetupReport

logger = logging.getLogger(__name__)

CANARY_SUFFIX = candidates.CANARY_SUFFIX
ROLE_LABEL = candidates.ROLE_LABEL


class KubernetesTarget(DeploymentTarget):
    """Serves each model of an environment with Seldon Core in the environment's namespace.

    ``cluster`` (tests, notebooks sharing one connection) and ``config`` override what the
    settings say.
    """

    name = "kubernetes"

    def __init__(
        self,
        settings: Settings,
        environment: EnvironmentSettings,
        *,
        cluster: Cluster | None = None,
        config: KubernetesSettings | None = None,
    ) -> None:
        super().__init__(settings, environment)
        self.config = config or (
            cluster.config if cluster is not None else cluster_settings(settings, environment)
        )
        self.cluster = cluster or Cluster(self.config)
        self._owns_cluster = cluster is None
        self.namespace = namespace_for(settings, environment)
        self.manifest_format: manifests.ManifestFormat = settings.gitops.manifest
        self.crd = CRD_FOR_FORMAT[self.manifest_format]

    # -- the DeploymentTarget contract ---------------------------------------------------

    def problems(self, spec: DeploymentSpec) -> builtins.list[str]:
        """The base checks, and: only Seldon v2 documents can split traffic (a canary) or
        mirror a share of it."""
        found = super().problems(spec)
        if spec.traffic < 100 and self.manifest_format != "seldon-v2":
            found.append(
                f"traffic={spec.traffic}: a {self.manifest_format} deployment takes all of its "
                "environment's traffic; canaries need gitops.manifest: seldon-v2"
            )
        shadow = spec.candidate if spec.candidate is not None and spec.candidate.mirror else None
        if (
            shadow is not None
            and shadow.mirror_percent < 100
            and self.manifest_format != "seldon-v2"
        ):
            found.append(
                f"mirror_percent={shadow.mirror_percent}: a {self.manifest_format} shadow "
                "predictor receives every request; use 100, or gitops.manifest: seldon-v2"
            )
        return found

    def _apply(self, spec: DeploymentSpec, *, timeout: float | None) -> DeploymentStatus:
        """Server-side apply the spec's document and wait until Seldon reports it ready.

        Seldon's rolling update keeps the old version answering until the new one does.
        """
        deadline = time.monotonic() + self._timeout(timeout)
        if self.manifest_format == "seldon-v2" and spec.traffic < 100:
            return self._apply_canary(spec, deadline)
        if self.manifest_format == "seldon-v2" and spec.candidate is not None:
            return self._apply_candidate(spec, deadline)
        doc = manifests.render(spec, self.manifest_format, self.namespace)
        began = time.monotonic()
        stored = self.cluster.apply(self.crd, doc, self.namespace)
        logger.info(
            "%s: applied %s %s/%s (generation %s)",
            spec.key,
            self.crd.kind,
            self.namespace,
            spec.model_name,
            (stored.get("metadata") or {}).get("generation"),
        )
        self._wait(self.crd, spec.model_name, spec.version, deadline)
        if self.manifest_format == "seldon-v2":
            self._remove_canary(spec.model_name)
        took = time.monotonic() - began
        status = self._status(spec.model_name)
        assert status is not None
        return replace(status, detail=f"{status.detail}; ready in {took:.1f} s")

    def _delete(self, model_name: str) -> None:
        """Delete the model's object (and a v2 canary and Experiment); wait until gone."""
        deadline = time.monotonic() + self._timeout(None)
        if self.manifest_format == "seldon-v2":
            self._remove_canary(model_name)
        if self.cluster.delete(self.crd, self.namespace, model_name):
            self._wait_gone(self.crd, model_name, deadline)

    def _status(self, model_name: str) -> DeploymentStatus | None:
        """What the cluster reports now; None when there is no such object."""
        doc = self.cluster.get(self.crd, self.namespace, model_name)
        if doc is None:
            return None
        if self.manifest_format == "seldon-v2" and self.cluster.serves(SELDON_EXPERIMENT):
            experiment = self.cluster.get(SELDON_EXPERIMENT, self.namespace, model_name)
            if experiment is not None and managed(experiment):
                return self._canary_status(model_name, doc, experiment)
        return self._observed(model_name, doc)

    def _list(self) -> list[DeploymentStatus]:
        """Every deployment this toolkit made in the environment's namespace, by name."""
        found = []
        for doc in self.cluster.list(self.crd, self.namespace):
            labels = doc["metadata"].get("labels") or {}
            if labels.get(ROLE_LABEL) == "canary":
                continue
            if self.manifest_format == "seldon-v1":
                found.append(self._observed(doc["metadata"]["name"], doc))
                continue
            status = self._status(doc["metadata"]["name"])
            if status is not None:
                found.append(status)
        return found

    def _endpoint(self, model_name: str) -> str:
        """``<ingress_url>/seldon/<namespace>/<name>/v2/models/<model>`` (v1; see the docs)."""
        if self.cluster.get(self.crd, self.namespace, model_name) is None:
            raise TargetError(
                f"model {model_name!r} is not deployed in namespace {self.namespace!r} "
                f"(environment {self.environment.name!r})"
            )
        url = self._endpoint_url(model_name)
        if url is None:
            raise TargetError(
                "no ingress configured to reach deployments through: set kubernetes.ingress_url "
                "(MLOPS_KIT_KUBERNETES__INGRESS_URL), e.g. http://<istio-ingressgateway "
                "address> or http://<ambassador address>"
            )
        return url

    @classmethod
    def setup(
        cls,
        project: Project,
        environments: builtins.list[EnvironmentSettings],
        report: SetupReport,
        *,
        apply_argocd: bool = False,
        cluster: Cluster | None = None,
        **options: Any,
    ) -> None:
        """Cluster reachable, Seldon CRDs served, namespaces, Argo CD Applications.

        ``apply_argocd`` also applies the Applications; ``cluster`` replaces the connection
        the settings describe. See :func:`~mlops_kit.targets.kubernetes.setup.setup_kubernetes`.
        """
        if options:
            super().setup(project, environments, report, **options)
        from mlops_kit.targets.kubernetes.setup import setup_kubernetes

        setup_kubernetes(project, environments, report, apply_argocd=apply_argocd, cluster=cluster)

    @classmethod
    def describe(cls, settings: Settings, environment: EnvironmentSettings) -> dict[str, Any]:
        """The environment's namespace."""
        return {"namespace": namespace_for(settings, environment)}

    def close(self) -> None:
        """Close the API client if this target opened it."""
        if self._owns_cluster:
            self.cluster.close()

    # -- internals -----------------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        return timeout or self.config.ready_timeout or self.settings.serving.ready_timeout

    def _endpoint_url(self, model_name: str) -> str | None:
        return endpoint_url(self.config, self.manifest_format, self.namespace, model_name)

    def _status_of(
        self, model_name: str, doc: dict[str, Any], detail: str = ""
    ) -> DeploymentStatus:
        state = readiness(doc)
        version = version_of(doc)
        text = state.detail if not detail else f"{state.detail}; {detail}"
        return DeploymentStatus(
            environment=self.environment.name,
            model_name=model_name,
            version=version if state.ready else None,
            ready=state.ready,
            endpoint=self._endpoint_url(model_name),
            detail=f"{self.crd.kind} {self.namespace}/{model_name}: {text}",
        )

    def _observed(self, model_name: str, doc: dict[str, Any]) -> DeploymentStatus:
        """The status of one object, with its candidate and, on v1, each predictor's state."""
        status = replace(self._status_of(model_name, doc), candidate=_candidate_of(doc))
        if doc.get("kind") == "SeldonDeployment" and len(doc["spec"].get("predictors", [])) > 1:
            return replace(status, detail=f"{status.detail}; {_predictors(doc)}")
        return status

    def _wait(self, crd: Crd, name: str, version: str | None, deadline: float) -> dict[str, Any]:
        last = "not found"

        def ready() -> dict[str, Any] | None:
            nonlocal last
            doc = self.cluster.get(crd, self.namespace, name)
            if doc is None:
                return None
            state = readiness(doc, version)
            if state.ready:
                return doc
            last = state.detail
            if state.failed:
                raise TargetError(
                    f"Seldon could not deploy {crd.kind} {self.namespace}/{name} version "
                    f"{version}: {last}; see `kubectl describe {crd.name} {name} -n "
                    f"{self.namespace}`"
                )
            return None

        try:
            return self._until(ready, deadline, f"{crd.kind} {name} to be ready")
        except WaitTimeout:
            raise DeploymentTimeout(
                f"{crd.kind} {self.namespace}/{name} version {version} was not ready in time "
                f"on {self.cluster.describe()}; last status: {last}. See `kubectl describe "
                f"{crd.name} {name} -n {self.namespace}`"
            ) from None

    def _wait_gone(self, crd: Crd, name: str, deadline: float) -> None:
        def gone() -> bool:
            return self.cluster.get(crd, self.namespace, name) is None

        try:
            self._until(gone, deadline, f"{crd.kind} {name} to be deleted")
        except WaitTimeout:
            raise DeploymentTimeout(
                f"{crd.kind} {self.namespace}/{name} is still there after deletion (a "
                "finalizer the operator has not released?)"
            ) from None

    def _until[T](self, predicate: Callable[[], T | None], deadline: float, what: str) -> T:
        """:func:`~mlops_kit.process.wait_until` ``predicate`` until ``deadline`` (monotonic)."""
        value = wait_until(
            predicate,
            timeout=deadline - time.monotonic(),
            interval=self.config.poll_interval,
            what=what,
        )
        assert value is not None  # wait_until returns only a truthy value
        return value

    # -- Seldon Core v2 canaries -----------------------------------------------------------

    def _apply_candidate(self, spec: DeploymentSpec, deadline: float) -> DeploymentStatus:
        """Stable Model, the candidate's Model, then the Experiment with the weights (or mirror)."""
        assert spec.candidate is not None
        name = spec.model_name
        self.cluster.apply(SELDON_MODEL, manifests.render(spec, "seldon-v2", self.namespace),
                           self.namespace)  # fmt: skip
        self._wait(SELDON_MODEL, name, spec.version, deadline)
        model, experiment = candidates.candidate_objects(spec, self.namespace)
        self.cluster.apply(SELDON_MODEL, model, self.namespace)
        self._wait(SELDON_MODEL, name + CANARY_SUFFIX, spec.candidate.version, deadline)
        return self._split(experiment, name, deadline)

    def _apply_canary(self, spec: DeploymentSpec, deadline: float) -> DeploymentStatus:
        name = spec.model_name
        stable = self.cluster.get(SELDON_MODEL, self.namespace, name)
        if stable is None or not readiness(stable).ready:
            raise TargetError(
                f"a canary of {name} at {spec.traffic}% needs a ready stable version in "
                f"namespace {self.namespace!r} first: deploy one with traffic 100"
            )
        canary_name = name + CANARY_SUFFIX
        canary = manifests.render(spec, "seldon-v2", self.namespace)
        canary["metadata"]["name"] = canary_name
        canary["metadata"]["labels"][ROLE_LABEL] = "canary"
        self.cluster.apply(SELDON_MODEL, canary, self.namespace)
        self._wait(SELDON_MODEL, canary_name, spec.version, deadline)
        experiment = manifests.render_experiment(
            name,
            [(name, 100 - spec.traffic), (canary_name, spec.traffic)],
            default=name,
            namespace=self.namespace,
        )
        return self._split(experiment, name, deadline)

    def _split(self, experiment: dict[str, Any], name: str, deadline: float) -> DeploymentStatus:
        """Apply the Experiment that splits ``name``'s traffic, wait for it: the status after."""
        self.cluster.require(SELDON_EXPERIMENT)
        self.cluster.apply(SELDON_EXPERIMENT, experiment, self.namespace)
        self._wait(SELDON_EXPERIMENT, name, None, deadline)
        status = self._status(name)
        assert status is not None
        return status

    def _remove_canary(self, model_name: str) -> None:
        if not self.cluster.serves(SELDON_EXPERIMENT):
            return
        experiment = self.cluster.get(SELDON_EXPERIMENT, self.namespace, model_name)
        if experiment is not None and managed(experiment):
            self.cluster.delete(SELDON_EXPERIMENT, self.namespace, model_name)
        canary = self.cluster.get(SELDON_MODEL, self.namespace, model_name + CANARY_SUFFIX)
        if canary is not None and managed(canary):
            self.cluster.delete(SELDON_MODEL, self.namespace, model_name + CANARY_SUFFIX)

    def _canary_status(
        self, model_name: str, stable: dict[str, Any], experiment: dict[str, Any]
    ) -> DeploymentStatus:
        canary = self.cluster.get(SELDON_MODEL, self.namespace, model_name + CANARY_SUFFIX)
        body = experiment.get("spec", {})
        weights = {c.get("name"): c.get("weight") for c in body.get("candidates", [])}
        mirror = body.get("mirror") or {}
        share = (
            f"a {mirror.get('percent', '?')}% mirror"
            if mirror.get("name") == model_name + CANARY_SUFFIX
            else f"{weights.get(model_name + CANARY_SUFFIX, '?')}%"
        )
        detail = (
            f"canary v{version_of(canary) if canary else '?'} at {share}, stable "
            f"v{version_of(stable)} at {weights.get(model_name, '?')}%"
        )
        if canary is None:
            return self._status_of(model_name, stable, detail)
        states = [readiness(doc) for doc in (stable, canary, experiment)]
        ready = all(s.ready for s in states)
        # A spec's candidate keeps the stable version the one served; an old-style canary spec
        # (traffic below 100) is itself the version applied.
        candidate = _candidate_of(stable)
        return DeploymentStatus(
            environment=self.environment.name,
            model_name=model_name,
            version=(version_of(canary) if candidate is None else version_of(stable))
            if ready
            else None,
            candidate=candidate,
            ready=ready,
            endpoint=self._endpoint_url(model_name),
            detail=f"Experiment {self.namespace}/{model_name}: {detail}; "
            + ", ".join(s.detail for s in states),
        )


def _candidate_of(doc: dict[str, Any]) -> Candidate | None:
    """The candidate a stored object serves beside its version (its body winning), if any."""
    if candidates.CANDIDATE_ANNOTATION not in (doc["metadata"].get("annotations") or {}):
        return None
    try:
        return manifests.spec_from_manifest(doc).candidate
    except ConfigError as exc:
        logger.warning("%s: unreadable candidate: %s", doc["metadata"].get("name"), exc)
        return None


def _predictors(doc: dict[str, Any]) -> str:
    """Each predictor's version, share and readiness: ``v1 ready at 90%, v2 ready at 10%``."""
    states = predictor_readiness(doc)
    parts = []
    for predictor in doc["spec"]["predictors"]:
        state = states.get(predictor.get("name", ""))
        version = (predictor.get("labels") or {}).get("version", predictor.get("name"))
        share = "shadow" if predictor.get("shadow") else f"at {predictor.get('traffic', 0)}%"
        said = state.detail if state is not None else "not reported"
        parts.append(f"v{version} {share}: {said}")
    return ", ".join(parts)


__all__ = ["CANARY_SUFFIX", "ROLE_LABEL", "KubernetesTarget"]
