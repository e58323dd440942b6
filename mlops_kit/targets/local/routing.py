"""How the local target renders :attr:`DeploymentSpec.candidate
<mlops_kit.deployment.DeploymentSpec.candidate>`: a routing model in front of two versions.

A spec with a candidate is served by :class:`mlops_kit.serving.routing.RoutingRuntime` under
the model's own name and the stable version's number, both versions loaded in the
environment's one MLServer: clients keep their endpoint while the traffic moves. Its model
settings name the candidate (``parameters.extra.candidate``); the weights live in
``route.json`` beside them, which the runtime re-reads when it changes. So a new weight (the
next canary step, a rollback to 0) is one atomic file write: nothing reloads, no request is
dropped. A new candidate, or the step from a plain model to a routed one and back, reloads the
model in place through MLServer's repository API (the old one answers until the new one is
loaded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_kit.deployment import Candidate, DeploymentSpec
from mlops_kit.errors import TargetError
from mlops_kit.process import write_json
from mlops_kit.settings import ServingSettings
from mlops_kit.targets.local.records import MODEL_SETTINGS_FILE, ServerRecord

ROUTING_RUNTIME = "mlops_kit.serving.routing.RoutingRuntime"
"""The ``implementation`` of a routed model's settings."""
ROUTE_FILE = "route.json"
_ROUTE_FIELDS = ("weight", "mirror", "mirror_percent", "sticky_header")
_IDENTITY_FIELDS = ("version", "model_uri", "run_id")


def check(spec: DeploymentSpec) -> None:
    """TargetError unless the local target can route ``spec``'s candidate."""
    if spec.candidate is not None and spec.flavour != "mlflow":
        raise TargetError(
            f"{spec.key}: the local target routes between versions with its MLflow runtime; "
            f"flavour {spec.flavour!r} cannot serve a candidate beside the stable version"
        )


def _identity(candidate: Candidate) -> dict[str, Any]:
    return {k: getattr(candidate, k) for k in _IDENTITY_FIELDS}


def write_settings(folder: Path, spec: DeploymentSpec, uri: str, serving: ServingSettings) -> None:
    """Write the routed model's settings and its route for ``spec`` (which has a candidate)."""
    assert spec.candidate is not None
    check(spec)
    model_dir = folder / spec.model_name
    write_route(folder, spec)
    write_json(
        model_dir / MODEL_SETTINGS_FILE,
        {
            "name": spec.model_name,
            "implementation": ROUTING_RUNTIME,
            "parameters": {
                "uri": uri,
                "version": spec.version,
                "extra": {
                    "max_batch_size": serving.max_batch_size,
                    "max_batch_time": serving.max_batch_time,
                    "candidate": _identity(spec.candidate),
                    "route_file": str(model_dir / ROUTE_FILE),
                },
            },
        },
    )


def write_route(folder: Path, spec: DeploymentSpec) -> None:
    """Write the weights of ``spec``'s candidate where the running router reads them."""
    assert spec.candidate is not None
    route = {k: getattr(spec.candidate, k) for k in _ROUTE_FIELDS}
    write_json(folder / spec.model_name / ROUTE_FILE, route)


def _loaded(folder: Path, model_name: str) -> dict[str, Any] | None:
    """The candidate identity the model's settings name, if they describe a routed model."""
    try:
        settings = json.loads((folder / model_name / MODEL_SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if settings.get("implementation") != ROUTING_RUNTIME:
        return None
    found = ((settings.get("parameters") or {}).get("extra") or {}).get("candidate")
    return found if isinstance(found, dict) else None


def retune(folder: Path, spec: DeploymentSpec) -> bool:
    """Move the weights in place when the loaded models are already ``spec``'s; True if so.

    Also True when neither the spec nor the loaded model has a candidate (nothing to route).
    False means the models themselves change: the caller reloads.
    """
    loaded = _loaded(folder, spec.model_name)
    if spec.candidate is None:
        return loaded is None
    if loaded != _identity(spec.candidate):
        return False
    write_route(folder, spec)
    return True


def observed(record: ServerRecord, model_name: str) -> Candidate | None:
    """The candidate a server routes to, with its current weights; None if it routes none."""
    if record.implementation != ROUTING_RUNTIME:
        return None
    folder = Path(record.folder)
    loaded = _loaded(folder, model_name)
    if loaded is None:
        return None
    try:
        route = json.loads((folder / model_name / ROUTE_FILE).read_text())
    except (OSError, ValueError):
        route = {}
    return Candidate(**loaded, **{k: route[k] for k in _ROUTE_FIELDS if k in route})
