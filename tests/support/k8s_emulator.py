"""A stateful Kubernetes API emulator on 127.0.0.1, an operator to play Seldon, an ingress.

``KubeEmulator`` is a real HTTP server (``http.server``, one thread per connection) speaking
enough of the Kubernetes API for the official ``kubernetes`` client: discovery (``/version``,
``/api``, ``/apis/<group>/<version>``), namespaces, and custom objects of the CRDs it has
"installed" — create, get, list with label selectors, server-side apply (creating when
absent), JSON merge patch, replace, the ``status`` subresource, delete — with
``resourceVersion``, ``generation`` (bumped when the spec changes) and the API server's error
``Status`` bodies: 404 without details for a resource type that is not served (a missing
CRD), 404 ``namespaces "x" not found`` on creating in a missing namespace, 409, 401 for a
wrong token, 403 with the RBAC wording for the rules a test ``deny``\\ s.

Why not kmock (0.8, installed)? Probed with the real client: ``POST /api/v1/namespaces``
answers 500 (its URL parser takes ``namespaces`` for the namespace segment of the path and
fails to unpack), so set-up cannot create namespaces; server-side apply of an absent object
answers 404 instead of creating it, and a patch merges dicts instead of dropping the fields
an apply no longer sets; objects get no ``resourceVersion`` / ``generation``, list ignores
label selectors; and it runs on an asyncio loop, which a synchronous client in this process
and a papermill kernel in another need in a thread of its own. Closing those gaps meant
patching its internals, so this emulator is written for what we use and nothing more.

``PlayOperator`` plays Seldon Core: it watches SeldonDeployments / Models / Experiments and
reports each new generation ready (or failed) in ``status`` — after serving the model for
real with a local MLServer (``LocalTarget``) behind ``IngressProxy`` when asked, so that a
request through the ingress path convention reaches a model.
"""

from __future__ import annotations

import copy
import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import yaml


@dataclass(frozen=True)
class Resource:
    """A resource type the emulator can serve."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SELDON_DEPLOYMENTS = Resource(
    "machinelearning.seldon.io", "v1", "seldondeployments", "SeldonDeployment"
)
SELDON_MODELS = Resource("mlops.seldon.io", "v1alpha1", "models", "Model")
SELDON_EXPERIMENTS = Resource("mlops.seldon.io", "v1alpha1", "experiments", "Experiment")
ARGOCD_APPLICATIONS = Resource("argoproj.io", "v1alpha1", "applications", "Application")
SELDON_V1 = (SELDON_DEPLOYMENTS,)
SELDON_V2 = (SELDON_MODELS, SELDON_EXPERIMENTS)
ALL_CRDS = (*SELDON_V1, *SELDON_V2, ARGOCD_APPLICATIONS)

_VERBS = ["create", "delete", "get", "list", "patch", "update"]


class ApiError(Exception):
    """An error answer: a Kubernetes ``Status`` object with its HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details or {},
            "code": code,
        }


def _not_served() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _details(resource: Resource, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"group": resource.group, "kind": resource.plural}
    if name:
        details["name"] = name
    return details


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _selected(obj: dict[str, Any], selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.strip().rstrip("=")) != value.strip().lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class _LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 whose handler reaches its owner as ``server.owner``."""

    handler: type[BaseHTTPRequestHandler]
    thread_name = "loopback-server"
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        server.daemon_threads = True
        server.owner = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=self.thread_name
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(10)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


class KubeEmulator(_LoopbackServer):
    """A stateful Kubernetes API server on 127.0.0.1 (see the module docstring)."""

    token = "emulator-token"
    user = "system:serviceaccount:ci:mlops-kit"

    def __init__(self, crds: tuple[Resource, ...] = ALL_CRDS) -> None:
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        """Notified on every change of state."""
        self._resources = {(r.group, r.version, r.plural): r for r in (NAMESPACES, *crds)}
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._applied: dict[tuple[tuple[str, str, str, str], str], dict[str, list[str]]] = {}
        self._denied: list[tuple[str, str, str | None]] = []
        self._rv = 0
        self.requests: list[tuple[str, str]] = []
        """``(method, path)`` of every request, in order."""

    def write_kubeconfig(
        self, path: Path, context: str = "emulator", token: str | None = None
    ) -> Path:
        """A kubeconfig whose ``context`` (also the current one) points at this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": "ci", "user": {"token": token or self.token}}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": "ci"}},
            ],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- state, for tests and the operator --------------------------------------------------

    def install(self, resource: Resource) -> None:
        with self.changed:
            self._resources[(resource.group, resource.version, resource.plural)] = resource
            self.changed.notify_all()

    def uninstall(self, resource: Resource) -> None:
        with self.changed:
            self._resources.pop((resource.group, resource.version, resource.plural), None)
            self.changed.notify_all()

    def installed(self, resource: Resource) -> bool:
        with self._lock:
            return (resource.group, resource.version, resource.plural) in self._resources

    def deny(self, verb: str, plural: str, namespace: str | None = None) -> None:
        """Answer 403 to ``verb`` on ``plural`` (in ``namespace``, or anywhere), like RBAC."""
        with self._lock:
            self._denied.append((verb, plural, namespace))

    def allow_all(self) -> None:
        with self._lock:
            self._denied.clear()

    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects.get(self._key(resource, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, resource: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (group, plural, ns, _), obj in sorted(self._objects.items())
                if (group, plural) == (resource.group, resource.plural)
                and (namespace is None or ns == namespace)
            ]

    def set_status(
        self, resource: Resource, namespace: str, name: str, status: dict[str, Any]
    ) -> bool:
        """Replace an object's status, as its operator does; False if the object is gone."""
        with self.changed:
            obj = self._objects.get(self._key(resource, namespace, name))
            if obj is None:
                return False
            obj["status"] = copy.deepcopy(status)
            self._bump(obj)
            self.changed.notify_all()
            return True

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.1))
        return True

    # -- HTTP --------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.changed:
            self.requests.append((method, url.path))
            try:
                if headers.get("Authorization") != f"Bearer {self.token}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                code, payload = self._route(method, url.path, query, headers, body)
            except ApiError as exc:
                return exc.code, exc.body
            self.changed.notify_all()
            return code, payload

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return 200, {
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.0-emulator",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2026-11-22T00:00:00Z",
                "goVersion": "go1.23",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if parts == ["apis"]:
            return 200, self._group_list()
        if len(parts) == 2 and parts[0] == "apis":
            return 200, self._group(parts[1])
        if parts == ["api", "v1"]:
            return 200, self._resource_list("", "v1")
        if len(parts) == 3 and parts[0] == "apis":
            return 200, self._resource_list(parts[1], parts[2])
        if len(parts) >= 3 and parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_served()
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        subresource = rest[2] if len(rest) > 2 else None
        resource = self._resources.get((group, version, plural))
        if resource is None or len(rest) > 3 or subresource not in (None, "status"):
            raise _not_served()
        if resource.namespaced and namespace is None and (name or method != "GET"):
            raise _not_served()
        verb = self._verb(method, name, query)
        self._authorize(verb, resource, namespace, name)
        if name is None:
            if verb == "list":
                return 200, self._list(resource, namespace, query.get("labelSelector", ""))
            return self._create(resource, namespace, self._body(headers, body))
        if verb == "get":
            return 200, self._fetch(resource, namespace, name)
        if verb == "delete":
            return 200, self._delete(resource, namespace, name)
        if verb == "update":
            return 200, self._replace(
                resource, namespace, name, self._body(headers, body), subresource
            )
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        return self._patch(
            resource, namespace, name, content_type, self._body(headers, body), query, subresource
        )

    @staticmethod
    def _verb(method: str, name: str | None, query: dict[str, str]) -> str:
        if method == "GET" and query.get("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by the emulator")
        verbs = {
            ("GET", False): "list",
            ("POST", False): "create",
            ("GET", True): "get",
            ("PATCH", True): "patch",
            ("PUT", True): "update",
            ("DELETE", True): "delete",
        }
        verb = verbs.get((method, name is not None))
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        return verb

    def _authorize(
        self, verb: str, resource: Resource, namespace: str | None, name: str | None
    ) -> None:
        for denied_verb, plural, ns in self._denied:
            if (denied_verb, plural) == (verb, resource.plural) and ns in (None, namespace):
                thing = f'{resource.qualified} "{name}"' if name else resource.qualified
                where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                raise ApiError(
                    403,
                    "Forbidden",
                    f'{thing} is forbidden: User "{self.user}" cannot {verb} resource '
                    f'"{resource.plural}" in API group "{resource.group}" {where}',
                    _details(resource, name),
                )

    @staticmethod
    def _body(headers: Any, body: bytes) -> dict[str, Any]:
        try:
            data = yaml.safe_load(body.decode() or "null")  # JSON is YAML
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the body is not valid: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        return data

    # -- discovery ---------------------------------------------------------------------------

    def _group_list(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for group, version, _ in self._resources:
            if group and version not in groups.setdefault(group, []):
                groups[group].append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group_entry(g, vs) for g, vs in sorted(groups.items())],
        }

    @staticmethod
    def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _group(self, group: str) -> dict[str, Any]:
        versions = sorted({v for g, v, _ in self._resources if g == group})
        if not versions:
            raise _not_served()
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group, versions)}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        found = [r for (g, v, _), r in self._resources.items() if (g, v) == (group, version)]
        if not found:
            raise _not_served()
        entries = []
        for r in sorted(found, key=lambda r: r.plural):
            base = {
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
            }
            entries.append({"name": r.plural, **base, "verbs": _VERBS})
            entries.append(
                {"name": f"{r.plural}/status", **base, "verbs": ["get", "patch", "update"]}
            )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": entries,
        }

    # -- objects -----------------------------------------------------------------------------

    @staticmethod
    def _key(resource: Resource, namespace: str | None, name: str) -> tuple[str, str, str, str]:
        return (resource.group, resource.plural, namespace or "", name)

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _missing(self, resource: Resource, name: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{resource.qualified} "{name}" not found',
            _details(resource, name),
        )

    def _existing(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._objects.get(self._key(resource, namespace, name))
        if obj is None:
            raise self._missing(resource, name)
        return obj

    def _fetch(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return copy.deepcopy(self._existing(resource, namespace, name))

    def _list(self, resource: Resource, namespace: str | None, selector: str) -> dict[str, Any]:
        items = [obj for obj in self.list(resource, namespace) if _selected(obj, selector)]
        return {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _check_document(
        self, resource: Resource, namespace: str | None, doc: dict[str, Any], name: str | None
    ) -> None:
        if (doc.get("apiVersion"), doc.get("kind")) != (resource.api_version, resource.kind):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({doc.get('apiVersion')}) and kind "
                f"({doc.get('kind')}) do not match {resource.api_version} {resource.kind}",
            )
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ApiError(422, "Invalid", f"{resource.kind}: metadata.name: Required value")
        if name is not None and meta["name"] != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        if meta.get("namespace") not in (None, namespace):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )

    def _create(
        self, resource: Resource, namespace: str | None, doc: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        self._check_document(resource, namespace, doc, None)
        return 201, self._insert(resource, namespace, doc)

    def _insert(
        self, resource: Resource, namespace: str | None, doc: dict[str, Any]
    ) -> dict[str, Any]:
        name = doc["metadata"]["name"]
        if namespace is not None and not self._objects.get(self._key(NAMESPACES, None, namespace)):
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        key = self._key(resource, namespace, name)
        if key in self._objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{resource.qualified} "{name}" already exists',
                _details(resource, name),
            )
        obj = copy.deepcopy(doc)
        obj.pop("status", None)
        meta = obj["metadata"]
        meta.update(
            uid=str(uuid.uuid4()),
            creationTimestamp=_now(),
            generation=1,
        )
        if namespace is not None:
            meta["namespace"] = namespace
        if resource is NAMESPACES:
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        self._bump(obj)
        self._objects[key] = obj
        return copy.deepcopy(obj)

    @staticmethod
    def _content(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    def _store(
        self, key: tuple[str, str, str, str], old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        if new != old:
            if self._content(new) != self._content(old):
                new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            self._bump(new)
            self._objects[key] = new
        return copy.deepcopy(self._objects[key])

    def _patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        content_type: str,
        doc: dict[str, Any],
        query: dict[str, str],
        subresource: str | None,
    ) -> tuple[int, dict[str, Any]]:
        key = self._key(resource, namespace, name)
        if content_type == "application/apply-patch+yaml":
            manager = query.get("fieldManager")
            if not manager:
                raise ApiError(
                    422, "Invalid", "fieldManager: Required value: is required for apply patch"
                )
            self._check_document(resource, namespace, doc, name)
            if key not in self._objects:
                created = self._insert(resource, namespace, doc)
                self._remember(key, manager, doc)
                return 201, created
            return 200, self._apply(key, manager, doc, subresource)
        merge_types = {"application/merge-patch+json", "application/json"}
        if resource is NAMESPACES:
            merge_types.add("application/strategic-merge-patch+json")
        if content_type not in merge_types:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format ({content_type}) - accepted "
                "media types include: application/merge-patch+json, application/apply-patch+yaml",
            )
        old = self._existing(resource, namespace, name)
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in doc:
                new["status"] = _merge_patch(old.get("status"), doc["status"])
        else:
            patch = {k: v for k, v in doc.items() if k != "status"}
            new = _merge_patch(old, patch)
            new["metadata"] = {**new["metadata"], "name": name, "uid": old["metadata"]["uid"]}
        return 200, self._store(key, old, new)

    def _remember(self, key: tuple[str, str, str, str], manager: str, doc: dict[str, Any]) -> None:
        meta = doc.get("metadata") or {}
        self._applied[(key, manager)] = {
            "labels": list(meta.get("labels") or {}),
            "annotations": list(meta.get("annotations") or {}),
            "fields": list(self._content(doc)),
        }

    def _apply(
        self,
        key: tuple[str, str, str, str],
        manager: str,
        doc: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        """Server-side apply for one manager: it owns what it applied last time, and only that."""
        old = self._objects[key]
        before = self._applied.get((key, manager), {"labels": [], "annotations": [], "fields": []})
        new = copy.deepcopy(old)
        meta = doc.get("metadata") or {}
        for part in ("labels", "annotations"):
            kept = {
                k: v for k, v in (old["metadata"].get(part) or {}).items() if k not in before[part]
            }
            merged = {**kept, **(meta.get(part) or {})}
            if merged:
                new["metadata"][part] = merged
            else:
                new["metadata"].pop(part, None)
        if subresource == "status":
            new["status"] = copy.deepcopy(doc.get("status"))
        else:
            for field in before["fields"]:
                new.pop(field, None)
            new.update(copy.deepcopy(self._content(doc)))
        self._remember(key, manager, doc)
        return self._store(key, old, new)

    def _replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        doc: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        self._check_document(resource, namespace, doc, name)
        key = self._key(resource, namespace, name)
        old = self._existing(resource, namespace, name)
        wanted = (doc.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
                _details(resource, name),
            )
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(doc.get("status"))
        else:
            new = copy.deepcopy(doc)
            new["metadata"] = {
                **doc["metadata"],
                **{k: old["metadata"][k] for k in ("uid", "creationTimestamp", "generation")},
            }
            if namespace is not None:
                new["metadata"]["namespace"] = namespace
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return self._store(key, old, new)

    def _delete(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._existing(resource, namespace, name)
        del self._objects[self._key(resource, namespace, name)]
        for applied in [k for k in self._applied if k[0] == self._key(resource, namespace, name)]:
            del self._applied[applied]
        if resource is NAMESPACES:
            for key in [k for k in self._objects if k[2] == name]:
                del self._objects[key]
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {**_details(resource, name), "uid": obj["metadata"]["uid"]},
        }


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK waits
    timeout = 30  # an idle keep-alive connection ends its thread

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator: KubeEmulator = self.server.owner  # type: ignore[attr-defined]
        code, payload = emulator.handle(self.command, self.path, self.headers, body)
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- the ingress ------------------------------------------------------------------------------


EXECUTOR_LABELS = ("namespace", "deployment_name", "predictor_name", "predictor_version",
                   "method", "service", "code")  # fmt: skip
"""Seldon Core 1.18's executor labels, ``namespace`` as a cluster's Prometheus adds it."""


@dataclass(frozen=True)
class Backend:
    """One upstream of a route: a predictor's server, its share of traffic and its version."""

    url: str
    weight: int = 100
    version: str = ""


class IngressProxy(_LoopbackServer):
    """A loopback reverse proxy playing the Istio / Ambassador gateway.

    ``route("/seldon/ns/name", [Backend("http://127.0.0.1:PORT", 100, "1")])`` sends
    ``/seldon/ns/name/v2/...`` to ``http://127.0.0.1:PORT/v2/...``; a path no route claims gets
    404, as from a gateway. A route to several :class:`Backend` splits requests at random by
    their weights, as Istio's VirtualService splits a SeldonDeployment's traffic across its
    predictors.

    It also plays the Seldon v1 executor's metrics: every request it proxies to a
    SeldonDeployment is observed in ``seldon_api_executor_server_requests_seconds``, labelled
    with the predictor that answered (its backend's version), served at
    ``/metrics`` for a Prometheus to scrape as a cluster's scrapes the executors.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self._routes: dict[str, tuple[Backend, ...]] = {}
        self._lock = threading.Lock()
        self.hits: list[tuple[str, str, int]] = []
        """``(method, path, status)`` of every proxied request."""
        self.registry = CollectorRegistry()
        self.executor = Histogram(
            "seldon_api_executor_server_requests_seconds",
            "requests from the ingress to the executor, seconds",
            EXECUTOR_LABELS,
            registry=self.registry,
        )

    def route(self, prefix: str, backends: list[Backend]) -> None:
        with self._lock:
            self._routes[prefix.rstrip("/")] = tuple(
                Backend(b.url.rstrip("/"), b.weight, b.version) for b in backends
            )

    def unroute(self, prefix: str) -> None:
        with self._lock:
            self._routes.pop(prefix.rstrip("/"), None)

    def resolve(self, path: str) -> tuple[Backend, str] | None:
        """The backend a request to ``path`` goes to (drawn by weight) and the path there."""
        import random

        with self._lock:
            for prefix in sorted(self._routes, key=len, reverse=True):
                if path == prefix or path.startswith(prefix + "/"):
                    backends = self._routes[prefix]
                    weights = [b.weight for b in backends]
                    chosen = random.choices(backends, weights)[0] if sum(weights) else backends[0]
                    return chosen, path[len(prefix) :] or "/"
        return None

    def observe(self, path: str, method: str, code: int, version: str, seconds: float) -> None:
        """Count one answer of a SeldonDeployment's predictor, as its executor would."""
        parts = path.split("/")  # /seldon/<namespace>/<name>/...
        if len(parts) < 4 or parts[1] != "seldon" or not version:
            return
        labels = (parts[2], parts[3], f"v{version}", version, method, "predictions", str(code))
        self.executor.labels(*labels).observe(seconds)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30

    def _serve(self) -> None:
        proxy: IngressProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        found = proxy.resolve(path)
        version = ""
        began = time.perf_counter()
        if path == "/metrics" and found is None:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            code, data, content_type = 200, generate_latest(proxy.registry), CONTENT_TYPE_LATEST
        elif found is None:
            code, data, content_type = 404, b"no route to host\n", "text/plain"
        else:
            backend, rest = found
            target = urlsplit(backend.url)
            query = urlsplit(self.path).query
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            try:
                headers = {"Content-Type": self.headers.get("Content-Type") or "application/json"}
                conn.request(self.command, rest + (f"?{query}" if query else ""), body, headers)
                response = conn.getresponse()
                code, data = response.status, response.read()
                content_type = response.getheader("Content-Type") or "application/json"
                version = backend.version  # the predictor's executor answered
            except OSError as exc:
                code, data, content_type = 503, f"upstream error: {exc}\n".encode(), "text/plain"
            finally:
                conn.close()
            proxy.observe(path, self.command, code, version, time.perf_counter() - began)
        proxy.hits.append((self.command, path, code))
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- the operator -----------------------------------------------------------------------------


def v1_status(obj: dict[str, Any], state: str = "Available", description: str = "") -> dict:
    meta = obj["metadata"]
    name, namespace = meta["name"], meta.get("namespace")
    predictor = obj["spec"]["predictors"][0]
    # One Kubernetes Deployment per predictor, named as Seldon names them.
    deployments = {
        f"{name}-{p['name']}-0-{name}": {
            "name": f"{name}-{p['name']}-0-{name}",
            "replicas": p.get("replicas", 1),
            "availableReplicas": p.get("replicas", 1) if state == "Available" else 0,
        }
        for p in obj["spec"]["predictors"]
    }
    return {
        "state": state,
        "description": description,
        "observedGeneration": meta["generation"],
        "deploymentStatus": deployments,
        "replicas": predictor.get("replicas", 1),
        "address": {
            "url": f"http://{name}-{predictor['name']}.{namespace}.svc.cluster.local:8000/v2/models/{name}/infer"
        },
    }


def v2_status(obj: dict[str, Any], ready: bool = True, message: str = "") -> dict:
    flag = "True" if ready else "False"
    return {
        "conditions": [
            {"type": "ModelReady", "status": flag, "reason": message or "ModelAvailable"},
            {"type": "Ready", "status": flag, "message": message},
        ],
        "observedGeneration": obj["metadata"]["generation"],
        "replicas": obj["spec"].get("replicas", 1) if "replicas" in obj.get("spec", {}) else 1,
        "availableReplicas": 1 if ready else 0,
    }


def experiment_status(obj: dict[str, Any], ready: bool = True) -> dict:
    flag = "True" if ready else "False"
    return {
        "conditions": [
            {"type": "ExperimentReady", "status": flag},
            {"type": "Ready", "status": flag},
        ],
        "observedGeneration": obj["metadata"]["generation"],
    }


class PlayOperator:
    """Plays Seldon Core against the emulator: every new generation is reported in ``status``.

    ``delay`` waits before reporting; ``fail`` reports failure instead. With ``ingress`` and
    ``state_dir``, a SeldonDeployment is first served for real, each predictor by a local
    MLServer of its own (``LocalTarget``, one state directory per namespace under
    ``state_dir``), and its ingress path ``/seldon/<namespace>/<name>`` routed across them by
    the predictors' ``traffic`` (a shadow predictor is not served).
    """

    def __init__(
        self,
        emulator: KubeEmulator,
        *,
        delay: float = 0.0,
        fail: bool = False,
        ingress: IngressProxy | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.emulator = emulator
        self.delay = delay
        self.fail = fail
        self.ingress = ingress
        self.state_dir = state_dir
        self.reconciled: list[tuple[str, str, str, int]] = []
        """``(kind, namespace, name, generation)`` for each status reported."""
        self.errors: list[str] = []
        self._serving: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PlayOperator:
        self._thread = threading.Thread(target=self._run, name="play-operator")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self.emulator.changed:
            self.emulator.changed.notify_all()
        if self._thread is not None:
            self._thread.join(60)
        if self.state_dir is not None:
            from mlops_kit.targets.local import stop_all

            for folder in self.state_dir.glob("*"):
                stop_all(folder)

    def __enter__(self) -> PlayOperator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.emulator.changed:
                self.emulator.changed.wait(0.05)
            try:
                self._reconcile_all()
            except Exception as exc:  # a test reads the errors; keep playing
                self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.2)

    def _reconcile_all(self) -> None:
        seen: set[tuple[str, str]] = set()
        for resource in (SELDON_DEPLOYMENTS, SELDON_MODELS, SELDON_EXPERIMENTS):
            if not self.emulator.installed(resource):
                continue
            for obj in self.emulator.list(resource):
                meta = obj["metadata"]
                if resource is SELDON_DEPLOYMENTS:
                    seen.add((meta["namespace"], meta["name"]))
                observed = (obj.get("status") or {}).get("observedGeneration")
                if observed != meta["generation"]:
                    self._reconcile(resource, obj)
        for namespace, name in self._serving - seen:
            self._retire(namespace, name)

    def _reconcile(self, resource: Resource, obj: dict[str, Any]) -> None:
        if self.delay:
            time.sleep(self.delay)
        meta = obj["metadata"]
        if resource is SELDON_DEPLOYMENTS:
            if self.fail:
                status = v1_status(obj, "Failed", "0/1 nodes are available: insufficient memory")
            else:
                if self.ingress is not None:
                    self._serve(obj)
                status = v1_status(obj)
        elif resource is SELDON_EXPERIMENTS:
            status = experiment_status(obj, ready=not self.fail)
        else:
            status = v2_status(obj, ready=not self.fail, message="failed" if self.fail else "")
        # Recorded first: whoever sees the status may look at this list at once.
        entry = (resource.kind, meta["namespace"], meta["name"], meta["generation"])
        self.reconciled.append(entry)
        if not self.emulator.set_status(resource, meta["namespace"], meta["name"], status):
            self.reconciled.remove(entry)

    def _local_target(self, namespace: str, environment: str) -> Any:
        from mlops_kit.settings import EnvironmentSettings, Settings
        from mlops_kit.targets.local import LocalTarget

        assert self.state_dir is not None
        settings = Settings(state_dir=self.state_dir / namespace)
        return LocalTarget(settings, EnvironmentSettings(name=environment, kind="staging"))

    def _serve(self, obj: dict[str, Any]) -> None:
        """Serve each predictor by its own server (the candidate's in an environment of its
        own) and route the ingress path across them by the predictors' ``traffic``."""
        from mlops_kit.deployment import DeploymentSpec
        from mlops_kit.gitops import manifests

        assert self.ingress is not None
        spec = manifests.spec_from_manifest(obj)
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        stable = spec.model_copy(update={"candidate": None})
        predictors = [(stable, 100)]
        canary = f"{spec.environment}-candidate"
        if spec.candidate is not None and not spec.candidate.mirror:
            c = spec.candidate
            predictors = [
                (stable, 100 - c.weight),
                (DeploymentSpec(environment=canary, model_name=name, version=c.version,
                                model_uri=c.model_uri, run_id=c.run_id), c.weight),
            ]  # fmt: skip
        backends = []
        for predictor, weight in predictors:
            with self._local_target(namespace, predictor.environment) as target:
                target.apply(predictor)
                record = target.server(name)
            backends.append(Backend(record.base_url, weight, predictor.version))
        self.ingress.route(f"/seldon/{namespace}/{name}", backends)
        if len(predictors) == 1:
            with self._local_target(namespace, canary) as target:
                target.delete(name)  # the candidate's predictor is gone (idempotent)
        self._serving.add((namespace, name))

    def _retire(self, namespace: str, name: str) -> None:
        from mlops_kit.targets.local import stop_all

        assert self.ingress is not None and self.state_dir is not None
        self.ingress.unroute(f"/seldon/{namespace}/{name}")
        stop_all(self.state_dir / namespace)
        self._serving.discard((namespace, name))


def ensure_namespace(emulator: KubeEmulator, name: str) -> None:
    """Create a namespace directly in the emulator's state (test set-up)."""
    with emulator.changed, suppress(ApiError):
        emulator._insert(
            NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )


def entry_point_path(folder: Path) -> Path:
    """A directory declaring the ``kubernetes`` target entry point, for ``sys.path``.

    It declares exactly what ``pyproject.toml`` declares (group ``mlops_kit.targets``), so a
    process with it on its path finds the target the way an installed package does.
    """
    dist = folder / "mlops_kit_kubernetes_target-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mlops-kit-kubernetes-target\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[mlops_kit.targets]\nkubernetes = mlops_kit.targets.kubernetes:KubernetesTarget\n"
    )
    return folder


KubeEmulator.handler = _ApiHandler
KubeEmulator.thread_name = "kube-emulator"
IngressProxy.handler = _ProxyHandler
IngressProxy.thread_name = "ingress-proxy"
