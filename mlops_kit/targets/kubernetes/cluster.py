"""One Kubernetes cluster through the official client, every failure one TargetError with the fix.

The ``kubernetes`` package is imported only when a cluster is first used (extra
``kubernetes``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_kit.errors import MissingDependencyError, TargetError
from mlops_kit.gitops import manifests
from mlops_kit.settings import KubernetesSettings

if TYPE_CHECKING:
    from mlops_kit.settings import EnvironmentSettings, Settings
    from mlops_kit.targets.kubernetes.crds import Crd

T = TypeVar("T")

FIELD_MANAGER = "mlops-kit"
"""Server-side apply field manager: the fields this toolkit owns in every object it applies."""
_MANAGED = f"{manifests.MANAGED_BY_LABEL}={manifests.MANAGED_BY}"


def cluster_settings(
    settings: Settings, environment: EnvironmentSettings | None = None
) -> KubernetesSettings:
    """``settings.kubernetes``, with an environment's own ``context`` when it names one."""
    if environment is not None and environment.context:
        return settings.kubernetes.model_copy(update={"context": environment.context})
    return settings.kubernetes


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

    def __init__(self, config: KubernetesSettings | None = None, *, api_client: Any = None) -> None:
        self.config = config or KubernetesSettings()
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
        files = str(self.config.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
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


@contextlib.contextmanager
def connected(
    settings: Settings, environment: EnvironmentSettings | None = None
) -> Iterator[Cluster]:
    """A :class:`Cluster` for the settings (and an environment's context), closed afterwards."""
    cluster = Cluster(cluster_settings(settings, environment))
    try:
        yield cluster
    finally:
        cluster.close()


__all__ = ["FIELD_MANAGER", "Cluster", "cluster_settings", "connected", "namespace_manifest"]
