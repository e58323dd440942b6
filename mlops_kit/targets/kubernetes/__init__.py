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


Cluster options are the ``kubernetes:`` settings section
(:class:`~mlops_kit.settings.KubernetesSettings`, variables ``MLOPS_KIT_KUBERNETES__*``), whose
defaults are ``KUBECONFIG`` / ``~/.kube/config`` and its current context; an environment's own
``context`` picks its cluster. See ``docs/kubernetes.md``.

Modules: :mod:`.crds` the custom resources, :mod:`.cluster` the API client wrapper,
:mod:`.readiness` what an object's status says, :mod:`.endpoints` namespaces and ingress URLs,
:mod:`.target` the deployment target.
"""

from mlops_kit.targets.kubernetes.cluster import (
    FIELD_MANAGER,
    Cluster,
    cluster_settings,
    connected,
    namespace_manifest,
)
from mlops_kit.targets.kubernetes.crds import (
    ARGOCD_APPLICATION,
    CRD_FOR_FORMAT,
    SELDON_DEPLOYMENT,
    SELDON_EXPERIMENT,
    SELDON_MODEL,
    Crd,
)
from mlops_kit.targets.kubernetes.endpoints import namespace_for
from mlops_kit.targets.kubernetes.readiness import Readiness, readiness
from mlops_kit.targets.kubernetes.target import KubernetesTarget

__all__ = [
    "ARGOCD_APPLICATION",
    "CRD_FOR_FORMAT",
    "FIELD_MANAGER",
    "SELDON_DEPLOYMENT",
    "SELDON_EXPERIMENT",
    "SELDON_MODEL",
    "Cluster",
    "Crd",
    "KubernetesTarget",
    "Readiness",
    "cluster_settings",
    "connected",
    "namespace_for",
    "namespace_manifest",
    "readiness",
]
