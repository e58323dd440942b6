"""The Kubernetes target: Seldon Core deployments applied through the Kubernetes API.

Each environment is a namespace (``environment.namespace`` or ``<project>-<environment>``)
of the cluster named by a kubeconfig context. A deployment is the document
:func:`mlops_kit.gitops.manifests.render` makes of its spec — exactly what the GitOps repository
holds — server-side applied with the field manager ``mlops-kit``:

- ``gitops.manifest: seldon-v1``: a ``SeldonDeployment``; ready when ``status.state`` is
  ``Available`` for the generation carrying the spec's version annotation;
- ``gitops.manifest: seldon-v2``: a ``Model``; ready when its ``Ready`` condition is true.
  A spec with ``traffic`` below 100 becomes a canary: the Model ``<name>-canary`` beside
  the stable ``<name>`` plus an ``Experiment`` ``<name>`` splitting the traffic.

Seldon Core (the operator) does the rolling update; this module waits for it and turns
what the API server says (404 on a missing CRD, 403 from RBAC, no cluster at all) into one
:class:`~mlops_kit.errors.TargetError` that names the fix. The ``kubernetes`` package is
imported only when a cluster is first used (extra ``kubernetes``).

Cluster options come from the ``kubernetes:`` settings section when there is one, else from
``MLOPS_KIT_KUBERNETES__*`` variables (the names that section will read), else defaults:
``KUBECONFIG`` / ``~/.kube/config`` and its current context. See ``docs/kubernetes.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_kit.errors import DeploymentTimeout, MissingDependencyError, TargetError
from mlops_kit.gitops import manifests
from mlops_kit.targets.base import DeploymentStatus, DeploymentTarget

if TYPE_CHECKING:
    from mlops_kit.deployment import DeploymentSpec
    from mlops_kit.settings import EnvironmentSettings, Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIELD_MANAGER = "mlops-kit"
"""Server-side apply field manager: the fields this toolkit owns in every object it applies."""
ENV_PREFIX = "MLOPS_KIT_KUBERNETES__"
CANARY_SUFFIX = "-canary"
ROLE_LABEL = "mlops-kit.io/role"
_MANAGED = f"{manifests.MANAGED_BY_LABEL}={manifests.MANAGED_BY}"


@dataclass(frozen=True)
class Crd:
    """A custom resource the toolkit uses, and what to install when a cluster lacks it."""

    group: str
    version: str
    plural: str
    kind: str
    install: str
    """The fix, for the message when the cluster does not serve this resource."""

    @property
    def api_version(self) -> str:
        """``group/version``, as written in documents."""
        return f"{self.group}/{self.version}"

    @property
    def name(self) -> str:
        """The CRD's name, ``<plural>.<group>``."""
        return f"{self.plural}.{self.group}"

    def missing(self) -> str:
        """One message naming what to install."""
        return (
            f"{self.kind} CRD not found in the cluster ({self.name} {self.version} is not "
            f"served): install {self.install}"
        )


SELDON_DEPLOYMENT = Crd(
    "machinelearning.seldon.io",
    "v1",
    "seldondeployments",
    "SeldonDeployment",
    "Seldon Core v1 (helm install seldon-core seldon-core-operator --repo "
    "https://storage.googleapis.com/seldon-charts --namespace seldon-system "
    "--create-namespace --set istio.enabled=true) or choose gitops.manifest: seldon-v2 with "
    "Seldon Core v2",
)
SELDON_MODEL = Crd(
    "mlops.seldon.io",
    "v1alpha1",
    "models",
    "Model",
    "Seldon Core v2 (helm install seldon-core-v2-crds seldon-core-v2-crds --repo "
    "https://seldonio.github.io/helm-charts, then seldon-core-v2-setup and "
    "seldon-core-v2-servers) or choose gitops.manifest: seldon-v1 with Seldon Core v1",
)
SELDON_EXPERIMENT = replace(SELDON_MODEL, plural="experiments", kind="Experiment")
ARGOCD_APPLICATION = Crd(
    "argoproj.io",
    "v1alpha1",
    "applications",
    "Application",
    "Argo CD (kubectl create namespace argocd && kubectl apply -n argocd -f "
    "https://raw.githubusercontent.com/argoproj/argo-cd/stable/manifests/install.yaml) or "
    "run notebook 01 with apply_argocd=False and sync with mlops-kit",
)
CRD_FOR_FORMAT = {"seldon-v1": SELDON_DEPLOYMENT, "seldon-v2": SELDON_MODEL}

_DEFAULT_PATHS = {
    # Seldon Core v1 behind Istio or Ambassador: one path prefix per SeldonDeployment.
    "seldon-v1": "/seldon/{namespace}/{name}/v2/models/{model}",
    # Seldon Core v2: the mesh routes on the model name (and the Seldon-Model header).
    "seldon-v2": "/v2/models/{model}",
}


@dataclass(frozen=True)
class KubernetesConfig:
    """Which cluster, how to reach the endpoints, how to wait: the ``kubernetes:`` settings."""

    kubeconfig: str | None = None
    """kubeconfig file; None: ``$KUBECONFIG``, else ``~/.kube/config``, else in-cluster."""
    context: str | None = None
    """kubeconfig context; None: the file's current context."""
    ingress_url: str | None = None
    """Base URL of the ingress (Istio gateway, Ambassador) that endpoints are reached through."""
    ingress_path: str | None = None
    """Endpoint path template (``{namespace}``, ``{name}``, ``{model}``); None: per format."""
    argocd_namespace: str = "argocd"
    """Namespace Argo CD runs in and its Applications live in."""
    ready_timeout: float | None = None
    """Seconds to wait for a deployment; None: ``serving.ready_timeout``."""
    poll_interval: float = 1.0
    """Seconds between two looks at a deployment's status while waiting."""
    request_timeout: float = 30.0
    """Seconds any single API request may take."""

    @classmethod
    def from_settings(
        cls, settings: Settings, environment: EnvironmentSettings | None = None
    ) -> KubernetesConfig:
        """Options from ``settings.kubernetes`` when it exists, else ``MLOPS_KIT_KUBERNETES__*``.

        An environment's own ``context`` (when the settings have that field) wins.
        """
        section = getattr(settings, "kubernetes", None)
        values: dict[str, Any] = {}
        for field in fields(cls):
            if section is not None and hasattr(section, field.name):
                value = getattr(section, field.name)
            else:
                value = os.environ.get(ENV_PREFIX + field.name.upper()) or None
            if value is not None:
                values[field.name] = value
        context = getattr(environment, "context", None) if environment is not None else None
        if context:
            values["context"] = context
        try:
            for name in ("ready_timeout", "poll_interval", "request_timeout"):
                if name in values:
                    values[name] = float(values[name])
        except ValueError as exc:
            from mlops_kit.errors import ConfigError

            raise ConfigError(f"kubernetes.{name}: not a number ({exc})") from None
        if values.get("kubeconfig") is not None:
            values["kubeconfig"] = str(values["kubeconfig"])
        return cls(**values)


def namespace_for(settings: Settings, environment: EnvironmentSettings) -> str:
    """The environment's namespace: its ``namespace`` setting, else ``<project>-<name>``."""
    return environment.namespace or f"{settings.project}-{environment.name}"


def _kubernetes() -> Any:
    try:
        import kubernetes
    except ImportError:
        raise MissingDependencyError("kubernetes", "kubernetes") from None
    return kubernetes


class Cluster:
    """One Kubernetes cluster (a kubeconfig context) through the official client.

    Every method raises :class:`~mlops_kit.errors.TargetError` naming what failed and how to
    fix it: no cluster configured, cluster unreachable, credentials refused, RBAC (verb,
    resource and namespace), a CRD that is not installed.
    """

    def __init__(self, config: KubernetesConfig | None = None, *, api_client: Any = None) -> None:
        self.config = config or KubernetesConfig()
        self._api = api_client
        self._served: dict[tuple[str, str], set[str] | None] = {}
        self._context = f"context {self.config.context}" if self.config.context else "context"

    # -- connection ----------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The ``kubernetes.client.ApiClient``, created from kubeconfig on first use."""
        if self._api is None:
            self._api = self._connect()
        return self._api

    def _connect(self) -> Any:
        k8s = _kubernetes()
        import urllib3
        from kubernetes.config.config_exception import ConfigException

        # Read KUBECONFIG now: the client reads it once, when it is first imported.
        files = self.config.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        configuration = k8s.client.Configuration()
        # Fail fast on an unreachable server instead of retrying three times.
        configuration.retries = urllib3.Retry(total=2, connect=1, read=1, backoff_factor=0.2)
        try:
            k8s.config.load_kube_config(
                config_file=os.path.expanduser(files),
                context=self.config.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except ConfigException as exc:
            if "No configuration found" not in str(exc):
                raise TargetError(
                    f"kubeconfig {files}: {exc}{self._contexts_hint(files)}"
                ) from None
        except OSError as exc:
            raise TargetError(f"cannot read kubeconfig {files}: {exc}") from None
        else:
            if not self.config.context:
                with contextlib.suppress(Exception):
                    _, active = k8s.config.list_kube_config_contexts(os.path.expanduser(files))
                    self._context = f"context {active['name']}"
            return k8s.client.ApiClient(configuration)
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not self.config.kubeconfig:
            try:
                k8s.config.load_incluster_config(client_configuration=configuration)
            except ConfigException as exc:
                raise TargetError(f"in-cluster configuration failed: {exc}") from None
            self._context = "in-cluster service account"
            return k8s.client.ApiClient(configuration)
        raise TargetError(
            "no Kubernetes cluster configured: set KUBECONFIG (or kubernetes.kubeconfig) to a "
            f"kubeconfig file ({files} holds none; `kind get kubeconfig` or your cloud's CLI "
            "writes one); inside a pod the service account is used"
        )

    def _contexts_hint(self, files: str) -> str:
        if not self.config.context:
            return ""
        k8s = _kubernetes()
        try:
            contexts, _ = k8s.config.list_kube_config_contexts(os.path.expanduser(files))
        except Exception:  # the file is unreadable: the first message says enough
            return ""
        names = ", ".join(sorted(c["name"] for c in contexts)) or "none"
        return f" (kubernetes.context is {self.config.context!r}; the file has: {names})"

    @property
    def server(self) -> str:
        """The API server URL of the configured context."""
        return str(self.api.configuration.host)

    def describe(self) -> str:
        """``<server> (context <name>)``, for messages."""
        server = self.server
        return f"{server} ({self._context})"

    def close(self) -> None:
        """Close the client's connection pool."""
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.close()
            self._api = None

    def _request(
        self,
        fn: Callable[[], T],
        verb: str,
        what: str,
        namespace: str | None,
        *,
        crd: Crd | None = None,
        missing_ok: bool = False,
        absent_ok: bool = False,
        conflict_ok: bool = False,
    ) -> T | None:
        """Run one API request, turning the client's failures into TargetError.

        Returns None instead of raising for a 404 about the named object (``missing_ok``),
        any 404 (``absent_ok``), a 409 conflict (``conflict_ok``).
        """
        k8s = _kubernetes()
        import urllib3

        try:
            return fn()
        except k8s.client.ApiException as exc:
            if (exc.status == 404 and absent_ok) or (exc.status == 409 and conflict_ok):
                return None
            if exc.status == 404:
                body = _status_body(exc)
                details = body.get("details") or {}
                if details.get("kind") == "namespaces" and namespace and what != "namespaces":
                    raise TargetError(
                        f"namespace {namespace!r} does not exist on {self.describe()}: run "
                        "notebook 01 (environments.setup with target='kubernetes') or "
                        f"`kubectl create namespace {namespace}`"
                    ) from None
                if details.get("name"):
                    if missing_ok:
                        return None
                    raise TargetError(f"{what} {details['name']!r} not found") from None
                if crd is not None:
                    # No object name: the resource type itself is not served.
                    self._served.pop((crd.group, crd.version), None)
                    raise TargetError(crd.missing()) from None
            raise self._api_error(exc, verb, what, namespace) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise TargetError(
                f"cannot reach the Kubernetes API server at {self.describe()}: {reason}; is the "
                "cluster running and does KUBECONFIG point at it?"
            ) from None

    def _api_error(self, exc: Any, verb: str, what: str, namespace: str | None) -> TargetError:
        status = getattr(exc, "status", None)
        said = _status_message(exc)
        where = f"in namespace {namespace!r}" if namespace else "at cluster scope"
        if status == 401:
            return TargetError(
                f"the Kubernetes API server at {self.describe()} refused the credentials (401): "
                f"{said}; refresh the kubeconfig credentials"
            )
        if status == 403:
            return TargetError(
                f"RBAC: not allowed to {verb} {what} {where} on {self.describe()} (403: {said}); "
                f"grant the verb {verb!r} on {what} to this user or service account (a Role and "
                "RoleBinding in that namespace)"
            )
        if status == 422:
            return TargetError(f"the API server refused to {verb} {what} {where} (422): {said}")
        return TargetError(f"{verb} {what} {where} failed (HTTP {status}): {said}")

    # -- discovery -----------------------------------------------------------------------

    def version(self) -> str:
        """The server's version, e.g. ``v1.30.2``; also proves the cluster answers."""
        k8s = _kubernetes()
        version_api = k8s.client.VersionApi(self.api)
        info = self._request(
            lambda: version_api.get_code(_request_timeout=self._timeout),
            "get",
            "the server version",
            None,
        )
        return str(getattr(info, "git_version", "unknown"))

    def serves(self, crd: Crd) -> bool:
        """Does the cluster serve ``crd`` (discovery of its group/version; cached)?"""
        key = (crd.group, crd.version)
        if key not in self._served:
            k8s = _kubernetes()
            api = k8s.client.CustomObjectsApi(self.api)
            found = self._request(
                lambda: api.get_api_resources(
                    crd.group, crd.version, _request_timeout=self._timeout
                ),
                "get",
                f"API group {crd.api_version}",
                None,
                absent_ok=True,
            )
            self._served[key] = None if found is None else {r.name for r in found.resources or []}
        served = self._served[key]
        return served is not None and crd.plural in served

    def require(self, crd: Crd) -> None:
        """Raise TargetError naming what to install when the cluster does not serve ``crd``."""
        if not self.serves(crd):
            raise TargetError(crd.missing())

    def forget_discovery(self) -> None:
        """Look the CRDs up again next time (after installing one)."""
        self._served.clear()

    # -- namespaces ----------------------------------------------------------------------

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> bool:
        """Create namespace ``name`` unless it exists; True if it was created."""
        if self.namespace_exists(name):
            return False
        k8s = _kubernetes()
        core = k8s.client.CoreV1Api(self.api)
        body = namespace_manifest(name, labels)
        created = self._request(
            lambda: core.create_namespace(
                body, field_manager=FIELD_MANAGER, _request_timeout=self._timeout
            ),
            "create",
            "namespaces",
            None,
            conflict_ok=True,  # created meanwhile by someone else: as good
        )
        return created is not None

    def namespace_exists(self, name: str) -> bool:
        """Is there a namespace called ``name``?"""
        k8s = _kubernetes()
        core = k8s.client.CoreV1Api(self.api)
        found = self._request(
            lambda: core.read_namespace(name, _request_timeout=self._timeout),
            "get",
            "namespaces",
            None,
            missing_ok=True,
        )
        return found is not None

    # -- objects -------------------------------------------------------------------------

    def apply(self, crd: Crd, doc: dict[str, Any], namespace: str) -> dict[str, Any]:
        """Server-side apply ``doc`` into ``namespace``; the object as the server stored it."""
        self.require(crd)
        k8s = _kubernetes()
        api = k8s.client.CustomObjectsApi(self.api)
        name = doc["metadata"]["name"]
        body = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
        stored = self._request(
            lambda: api.patch_namespaced_custom_object(
                crd.group,
                crd.version,
                namespace,
                crd.plural,
                name,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
                _request_timeout=self._timeout,
            ),
            "patch",
            crd.name,
            namespace,
            crd=crd,
        )
        return dict(stored or {})

    def get(self, crd: Crd, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (TargetError when its CRD is missing)."""
        self.require(crd)
        k8s = _kubernetes()
        api = k8s.client.CustomObjectsApi(self.api)
        found = self._request(
            lambda: api.get_namespaced_custom_object(
                crd.group, crd.version, namespace, crd.plural, name, _request_timeout=self._timeout
            ),
            "get",
            crd.name,
            namespace,
            crd=crd,
            missing_ok=True,
        )
        return dict(found) if found is not None else None

    def list(
        self, crd: Crd, namespace: str, label_selector: str = _MANAGED
    ) -> list[dict[str, Any]]:
        """Objects of ``crd`` in ``namespace`` matching ``label_selector``, by name."""
        self.require(crd)
        k8s = _kubernetes()
        api = k8s.client.CustomObjectsApi(self.api)
        result = self._request(
            lambda: api.list_namespaced_custom_object(
                crd.group,
                crd.version,
                namespace,
                crd.plural,
                label_selector=label_selector,
                _request_timeout=self._timeout,
            ),
            "list",
            crd.name,
            namespace,
            crd=crd,
        )
        items = [dict(item) for item in (result or {}).get("items") or []]
        return sorted(items, key=lambda item: item["metadata"]["name"])

    def delete(self, crd: Crd, namespace: str, name: str) -> bool:
        """Delete the object; False if it did not exist. Idempotent."""
        self.require(crd)
        k8s = _kubernetes()
        api = k8s.client.CustomObjectsApi(self.api)
        missing = object()
        done = self._request(
            lambda: (
                api.delete_namespaced_custom_object(
                    crd.group,
                    crd.version,
                    namespace,
                    crd.plural,
                    name,
                    _request_timeout=self._timeout,
                )
                or missing
            ),
            "delete",
            crd.name,
            namespace,
            crd=crd,
            missing_ok=True,
        )
        return done is not None

    @property
    def _timeout(self) -> float:
        return self.config.request_timeout


def _status_body(exc: Any) -> dict[str, Any]:
    """The ``Status`` object an API error carries, or {}."""
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _status_message(exc: Any) -> str:
    message = _status_body(exc).get("message")
    if message:
        return str(message)
    return str(getattr(exc, "reason", None) or exc).strip()


def namespace_manifest(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``Namespace`` document for an environment."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {manifests.MANAGED_BY_LABEL: manifests.MANAGED_BY, **(labels or {})},
        },
    }


# -- readiness ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    """What an object's status says about one version."""

    ready: bool
    detail: str
    failed: bool = False
    """The operator gave up on this generation (v1 ``state: Failed``)."""


def readiness(doc: dict[str, Any], version: str | None = None) -> Readiness:
    """Is ``doc`` (a SeldonDeployment, Model or Experiment) ready, for ``version`` if given?

    Ready means: the version annotation matches, the operator has observed the current
    generation (when it reports ``observedGeneration``), and v1 ``status.state`` is
    ``Available`` / v2 the ``Ready`` condition is ``True``.
    """
    meta = doc.get("metadata") or {}
    annotated = (meta.get("annotations") or {}).get(manifests.VERSION_ANNOTATION)
    if version is not None and annotated is not None and annotated != version:
        return Readiness(False, f"the cluster holds version {annotated}, not {version}")
    status = doc.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        return Readiness(
            False, f"the operator has not processed generation {generation} yet (at {observed})"
        )
    if doc.get("kind") == "SeldonDeployment":
        state = status.get("state")
        description = status.get("description") or ""
        if state == "Available":
            return Readiness(True, "Available")
        text = f"state {state or 'not reported yet'}" + (f": {description}" if description else "")
        return Readiness(False, text, failed=state == "Failed")
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    ready = conditions.get("Ready")
    if ready is not None and ready.get("status") == "True":
        return Readiness(True, "Ready")
    if ready is None:
        return Readiness(False, "no Ready condition reported yet")
    said = ready.get("message") or ready.get("reason") or "not ready"
    return Readiness(False, f"Ready is {ready.get('status')}: {said}")


def _version_of(doc: dict[str, Any]) -> str | None:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    return annotations.get(manifests.VERSION_ANNOTATION)


# -- the target ----------------------------------------------------------------------------


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
        config: KubernetesConfig | None = None,
    ) -> None:
        super().__init__(settings, environment)
        self.config = config or (
            cluster.config
            if cluster is not None
            else KubernetesConfig.from_settings(settings, environment)
        )
        self.cluster = cluster or Cluster(self.config)
        self._owns_cluster = cluster is None
        self.namespace = namespace_for(settings, environment)
        self.manifest_format: manifests.ManifestFormat = settings.gitops.manifest
        self.crd = CRD_FOR_FORMAT[self.manifest_format]

    # -- the DeploymentTarget contract ---------------------------------------------------

    def apply(self, spec: DeploymentSpec, *, timeout: float | None = None) -> DeploymentStatus:
        """Server-side apply the spec's document and wait until Seldon reports it ready.

        See :meth:`DeploymentTarget.apply`; Seldon's rolling update keeps the old version
        answering until the new one does.
        """
        if spec.environment != self.environment.name:
            raise TargetError(
                f"{spec.key} belongs to environment {spec.environment!r}; this target serves "
                f"{self.environment.name!r}"
            )
        deadline = time.monotonic() + self._timeout(timeout)
        if self.manifest_format == "seldon-v2" and spec.traffic < 100:
            return self._apply_canary(spec, deadline)
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
        status = self.status(spec.model_name)
        assert status is not None
        return replace(status, detail=f"{status.detail}; ready in {took:.1f} s")

    def delete(self, model_name: str) -> None:
        """Delete the model's object (and a v2 canary and Experiment); wait until gone."""
        deadline = time.monotonic() + self._timeout(None)
        if self.manifest_format == "seldon-v2":
            self._remove_canary(model_name)
        if self.cluster.delete(self.crd, self.namespace, model_name):
            self._wait_gone(self.crd, model_name, deadline)

    def status(self, model_name: str) -> DeploymentStatus | None:
        """What the cluster reports now; None when there is no such object."""
        doc = self.cluster.get(self.crd, self.namespace, model_name)
        if doc is None:
            return None
        if self.manifest_format == "seldon-v2" and self.cluster.serves(SELDON_EXPERIMENT):
            experiment = self.cluster.get(SELDON_EXPERIMENT, self.namespace, model_name)
            if experiment is not None and _managed(experiment):
                return self._canary_status(model_name, doc, experiment)
        return self._status_of(model_name, doc)

    def list(self) -> list[DeploymentStatus]:
        """Every deployment this toolkit made in the environment's namespace, by name."""
        found = []
        for doc in self.cluster.list(self.crd, self.namespace):
            labels = doc["metadata"].get("labels") or {}
            if labels.get(ROLE_LABEL) == "canary":
                continue
            if self.manifest_format == "seldon-v1":
                found.append(self._status_of(doc["metadata"]["name"], doc))
                continue
            status = self.status(doc["metadata"]["name"])
            if status is not None:
                found.append(status)
        return found

    def endpoint(self, model_name: str) -> str:
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

    def close(self) -> None:
        """Close the API client if this target opened it."""
        if self._owns_cluster:
            self.cluster.close()

    # -- internals -----------------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        return timeout or self.config.ready_timeout or self.settings.serving.ready_timeout

    def _endpoint_url(self, model_name: str) -> str | None:
        if not self.config.ingress_url:
            return None
        template = self.config.ingress_path or _DEFAULT_PATHS[self.manifest_format]
        path = template.format(namespace=self.namespace, name=model_name, model=model_name)
        return self.config.ingress_url.rstrip("/") + "/" + path.lstrip("/")

    def _status_of(
        self, model_name: str, doc: dict[str, Any], detail: str = ""
    ) -> DeploymentStatus:
        state = readiness(doc)
        version = _version_of(doc)
        text = state.detail if not detail else f"{state.detail}; {detail}"
        return DeploymentStatus(
            environment=self.environment.name,
            model_name=model_name,
            version=version if state.ready else None,
            ready=state.ready,
            endpoint=self._endpoint_url(model_name),
            detail=f"{self.crd.kind} {self.namespace}/{model_name}: {text}",
        )

    def _wait(self, crd: Crd, name: str, version: str | None, deadline: float) -> dict[str, Any]:
        last = "not found"
        while True:
            doc = self.cluster.get(crd, self.namespace, name)
            if doc is not None:
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
            if time.monotonic() > deadline:
                raise DeploymentTimeout(
                    f"{crd.kind} {self.namespace}/{name} version {version} was not ready in time "
                    f"on {self.cluster.describe()}; last status: {last}. See `kubectl describe "
                    f"{crd.name} {name} -n {self.namespace}`"
                )
            time.sleep(self.config.poll_interval)

    def _wait_gone(self, crd: Crd, name: str, deadline: float) -> None:
        while self.cluster.get(crd, self.namespace, name) is not None:
            if time.monotonic() > deadline:
                raise DeploymentTimeout(
                    f"{crd.kind} {self.namespace}/{name} is still there after deletion (a "
                    "finalizer the operator has not released?)"
                )
            time.sleep(self.config.poll_interval)

    # -- Seldon Core v2 canaries -----------------------------------------------------------

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
        self.cluster.require(SELDON_EXPERIMENT)
        self.cluster.apply(SELDON_EXPERIMENT, experiment, self.namespace)
        self._wait(SELDON_EXPERIMENT, name, None, deadline)
        status = self.status(name)
        assert status is not None
        return status

    def _remove_canary(self, model_name: str) -> None:
        if not self.cluster.serves(SELDON_EXPERIMENT):
            return
        experiment = self.cluster.get(SELDON_EXPERIMENT, self.namespace, model_name)
        if experiment is not None and _managed(experiment):
            self.cluster.delete(SELDON_EXPERIMENT, self.namespace, model_name)
        canary = self.cluster.get(SELDON_MODEL, self.namespace, model_name + CANARY_SUFFIX)
        if canary is not None and _managed(canary):
            self.cluster.delete(SELDON_MODEL, self.namespace, model_name + CANARY_SUFFIX)

    def _canary_status(
        self, model_name: str, stable: dict[str, Any], experiment: dict[str, Any]
    ) -> DeploymentStatus:
        canary = self.cluster.get(SELDON_MODEL, self.namespace, model_name + CANARY_SUFFIX)
        weights = {
            c.get("name"): c.get("weight") for c in experiment.get("spec", {}).get("candidates", [])
        }
        detail = (
            f"canary v{_version_of(canary) if canary else '?'} at "
            f"{weights.get(model_name + CANARY_SUFFIX, '?')}%, stable v{_version_of(stable)} at "
            f"{weights.get(model_name, '?')}%"
        )
        if canary is None:
            return self._status_of(model_name, stable, detail)
        states = [readiness(doc) for doc in (stable, canary, experiment)]
        ready = all(s.ready for s in states)
        return DeploymentStatus(
            environment=self.environment.name,
            model_name=model_name,
            version=_version_of(canary) if ready else None,
            ready=ready,
            endpoint=self._endpoint_url(model_name),
            detail=f"Experiment {self.namespace}/{model_name}: {detail}; "
            + ", ".join(s.detail for s in states),
        )


def _managed(doc: dict[str, Any]) -> bool:
    labels = (doc.get("metadata") or {}).get("labels") or {}
    return labels.get(manifests.MANAGED_BY_LABEL) == manifests.MANAGED_BY


@contextlib.contextmanager
def connected(
    settings: Settings, environment: EnvironmentSettings | None = None
) -> Iterator[Cluster]:
    """A :class:`Cluster` for the settings (and an environment's context), closed afterwards."""
    cluster = Cluster(KubernetesConfig.from_settings(settings, environment))
    try:
        yield cluster
    finally:
        cluster.close()


__all__ = [
    "ARGOCD_APPLICATION",
    "SELDON_DEPLOYMENT",
    "SELDON_EXPERIMENT",
    "SELDON_MODEL",
    "Cluster",
    "Crd",
    "KubernetesConfig",
    "KubernetesTarget",
    "Readiness",
    "connected",
    "namespace_for",
    "namespace_manifest",
    "readiness",
]
