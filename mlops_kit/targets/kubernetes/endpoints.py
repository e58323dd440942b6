"""Where an environment's deployments live and answer: its namespace, the ingress URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_kit.gitops.manifests import ManifestFormat
    from mlops_kit.settings import EnvironmentSettings, KubernetesSettings, Settings

_DEFAULT_PATHS = {
    # Seldon Core v1 behind Istio or Ambassador: one path prefix per SeldonDeployment.
    "seldon-v1": "/seldon/{namespace}/{name}/v2/models/{model}",
    # Seldon Core v2: the mesh routes on the model name (and the Seldon-Model header).
    "seldon-v2": "/v2/models/{model}",
}


def namespace_for(settings: Settings, environment: EnvironmentSettings) -> str:
    """The environment's namespace: its ``namespace`` setting, else ``<project>-<name>``."""
    return environment.namespace or f"{settings.project}-{environment.name}"


def endpoint_url(
    options: KubernetesSettings, manifest_format: ManifestFormat, namespace: str, model_name: str
) -> str | None:
    """The URL a model's deployment answers at through the ingress; None without an ingress.

    ``kubernetes.ingress_path`` (``{namespace}``, ``{name}``, ``{model}``) or the format's
    default path, under ``kubernetes.ingress_url``.
    """
    if not options.ingress_url:
        return None
    template = options.ingress_path or _DEFAULT_PATHS[manifest_format]
    path = template.format(namespace=namespace, name=model_name, model=model_name)
    return options.ingress_url.rstrip("/") + "/" + path.lstrip("/")


__all__ = ["endpoint_url", "namespace_for"]
