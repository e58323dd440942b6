"""The routing model: one endpoint in front of two loaded versions, for progressive rollouts.

Loaded under the model's own name and the stable version's number, it holds two
:class:`~mlops_kit.serving.runtime.MLflowRuntime` instances in the same process: the stable
version and the candidate. Each request goes to one of them, by weight or, with a sticky
header, by a hash of that header's value (the same value always lands on the same version for
a given weight; raising the weight only moves callers from stable to candidate). In shadow
mode every request is answered by the stable version and a copy of ``mirror_percent`` percent
of them is predicted by the candidate afterwards: its answer is compared with the live one and
discarded, so no client ever sees it.

Every answer says who served it: ``model_version`` in the body (as for any version) and the
``X-Model-Version`` header. Per-version metrics (:mod:`mlops_kit.serving.routing_metrics`)
feed the rollout's analysis.

The weights live in a small JSON file (``parameters.extra.route_file``), re-read when its
modification time changes, so a canary step moves traffic without reloading either model or
dropping a request. Model settings select this runtime with ``"implementation":
"mlops_kit.serving.routing.RoutingRuntime"`` and ``parameters.extra.candidate`` =
``{"version": ..., "model_uri": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlserver.errors import MLServerError
from mlserver.model import MLModel
from mlserver.settings import ModelParameters, ModelSettings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, Parameters

from mlops_kit.serving import routing_metrics as m
from mlops_kit.serving.runtime import InvalidRequest, MLflowRuntime

__all__ = ["VERSION_HEADER", "Route", "RoutingRuntime", "same_answer"]

VERSION_HEADER = "X-Model-Version"
"""Response header naming the version that answered."""


@dataclass(frozen=True)
class Route:
    """How live traffic is shared: the route file's contents."""

    weight: int = 0
    mirror: bool = False
    mirror_percent: int = 100
    sticky_header: str | None = None

    @classmethod
    def read(cls, path: str) -> Route:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        fields = {
            k: data[k] for k in ("weight", "mirror", "mirror_percent", "sticky_header") if k in data
        }
        return cls(**fields)


def _bucket(value: str) -> int:
    """0-99, the same for the same value in every process (unlike ``hash``)."""
    return zlib.crc32(value.encode("utf-8")) % 100


def same_answer(live: InferenceResponse, shadow: InferenceResponse) -> bool:
    """Do two answers carry the same outputs (numbers equal within float tolerance)?"""
    if len(live.outputs) != len(shadow.outputs):
        return False
    for a, b in zip(live.outputs, shadow.outputs, strict=True):
        if a.shape != b.shape:
            return False
        x, y = np.asarray(a.data.root), np.asarray(b.data.root)
        if x.dtype.kind in "biuf" and y.dtype.kind in "biuf":
            if not np.allclose(x, y, rtol=1e-6, atol=1e-9, equal_nan=True):
                return False
        elif x.tolist() != y.tolist():
            return False
    return True


def _mean_output(response: InferenceResponse) -> float | None:
    if not response.outputs:
        return None
    values = np.asarray(response.outputs[0].data.root)
    if values.size == 0 or values.dtype.kind not in "biuf":
        return None
    return float(values.mean())


class RoutingRuntime(MLModel):
    """Splits one model's traffic between a stable and a candidate version (module doc)."""

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings)
        params = settings.parameters or ModelParameters()
        extra = dict(params.extra or {})
        candidate = extra.pop("candidate", None)
        route_file = extra.pop("route_file", None)
        if not isinstance(candidate, dict) or not route_file or not params.version:
            raise MLServerError(
                f"model {self.name!r}: a routing model needs parameters.version, "
                "parameters.extra.candidate and parameters.extra.route_file",
                status_code=500,
            )
        self._stable = MLflowRuntime(self._inner(settings, str(params.uri), params.version, extra))
        self._candidate = MLflowRuntime(
            self._inner(settings, str(candidate["model_uri"]), str(candidate["version"]), extra)
        )
        self._route_file = str(route_file)
        self._route_stamp: int | None = None
        self._route = Route()
        self._shadows: set[asyncio.Task[None]] = set()
        self._current_route()

    @staticmethod
    def _inner(
        settings: ModelSettings, uri: str, version: str, extra: dict[str, Any]
    ) -> ModelSettings:
        return ModelSettings(
            name=settings.name,
            implementation=MLflowRuntime,
            parameters=ModelParameters(uri=uri, version=version, extra=extra),
        )

    async def load(self) -> bool:
        """Both versions were loaded when this object was made."""
        return True

    async def unload(self) -> bool:
        """Finish the shadows in flight, then both versions' queued requests."""
        if self._shadows:
            await asyncio.gather(*self._shadows, return_exceptions=True)
        await self._stable.unload()
        await self._candidate.unload()
        return True

    async def metadata(self) -> MetadataModelResponse:
        """The stable version's signature (both versions take the same inputs)."""
        return await self._stable.metadata()

    def _current_route(self) -> Route:
        """The route file's weights, re-read only when the file changed."""
        try:
            stamp = os.stat(self._route_file).st_mtime_ns
        except OSError:
            return self._route  # keep the last good route while the file is being replaced
        if stamp != self._route_stamp:
            try:
                self._route = Route.read(self._route_file)
            except (OSError, ValueError, TypeError):
                return self._route
            self._route_stamp = stamp
            self._publish_weights(self._route)
        return self._route

    def _publish_weights(self, route: Route) -> None:
        stable, candidate = self._stable.version or "", self._candidate.version or ""
        share = 0 if route.mirror else route.weight
        m.WEIGHT.labels(self.name, stable, "stable").set(100 - share)
        m.WEIGHT.labels(self.name, candidate, "candidate").set(share)
        m.WEIGHT.labels(self.name, candidate, "shadow").set(
            route.mirror_percent if route.mirror else 0
        )

    def _to_candidate(self, payload: InferenceRequest, route: Route) -> bool:
        if route.mirror or route.weight <= 0:
            return False
        if route.weight >= 100:
            return True
        if route.sticky_header:
            headers = (payload.parameters.headers if payload.parameters else None) or {}
            value = headers.get(route.sticky_header.lower()) or headers.get(route.sticky_header)
            if value:
                return _bucket(str(value)) < route.weight
        return random.random() * 100 < route.weight  # noqa: S311 - a traffic split, not a secret

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        route = self._current_route()
        mirror = route.mirror and random.random() * 100 < route.mirror_percent  # noqa: S311
        copy = payload.model_copy(deep=True) if mirror else None
        role = "candidate" if self._to_candidate(payload, route) else "stable"
        model = self._candidate if role == "candidate" else self._stable
        response = await self._answer(model, payload, role)
        if copy is not None:
            task = asyncio.create_task(self._shadow(copy, response))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)
        headers = {VERSION_HEADER: model.version or ""}
        if response.parameters is None:
            response.parameters = Parameters(headers=headers)
        else:
            response.parameters.headers = {**(response.parameters.headers or {}), **headers}
        return response

    async def _answer(
        self, model: MLflowRuntime, payload: InferenceRequest, role: str
    ) -> InferenceResponse:
        """``model``'s answer, counted and timed under ``role``."""
        version = model.version or ""
        began = time.perf_counter()
        try:
            response = await model.predict(payload)
        except InvalidRequest:
            m.REQUESTS.labels(self.name, version, role, "invalid").inc()
            raise
        except Exception:
            m.REQUESTS.labels(self.name, version, role, "error").inc()
            raise
        m.DURATION.labels(self.name, version, role).observe(time.perf_counter() - began)
        m.REQUESTS.labels(self.name, version, role, "ok").inc()
        mean = _mean_output(response)
        if mean is not None:
            m.PREDICTIONS.labels(self.name, version, role).observe(mean)
        return response

    async def _shadow(self, payload: InferenceRequest, live: InferenceResponse) -> None:
        """Predict a mirrored copy with the candidate; compare, count, discard."""
        version = self._candidate.version or ""
        try:
            answer = await self._answer(self._candidate, payload, "shadow")
        except Exception:  # the shadow's failure is measured, never seen by a client
            m.COMPARISONS.labels(self.name, version, "error").inc()
            return
        agree = same_answer(live, answer)
        m.COMPARISONS.labels(self.name, version, "agree" if agree else "disagree").inc()
