"""The custom resources the toolkit applies, and what to install when a cluster lacks one."""

from __future__ import annotations

from dataclasses import dataclass, replace


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


__all__ = [
    "ARGOCD_APPLICATION",
    "CRD_FOR_FORMAT",
    "SELDON_DEPLOYMENT",
    "SELDON_EXPERIMENT",
    "SELDON_MODEL",
    "Crd",
]
