"""Notebooks 01 and 02 with ``target="kubernetes"``: papermill against the API emulator.

The test is the cluster: a stateful Kubernetes API emulator on loopback (the notebooks reach
it through the real client and a generated kubeconfig), an operator thread playing Seldon
Core that serves every SeldonDeployment it sees with a real local MLServer, and a loopback
ingress routing ``/seldon/<namespace>/<name>/`` to it — so the smoke test of notebook 02
really reaches a model through the ingress path convention.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import pytest
import yaml

from mlops_kit.notebook import runner
from tests.support import NOTEBOOKS, seeded_registry, write_project
from tests.support.argocd import validate_application
from tests.support.crds import validate
from tests.support.k8s_emulator import (
    ARGOCD_APPLICATIONS,
    NAMESPACES,
    SELDON_DEPLOYMENTS,
    IngressProxy,
    KubeEmulator,
    PlayOperator,
    ensure_namespace,
    entry_point_path,
)

pytestmark = pytest.mark.slow  # papermill kernels, MLServer behind the emulated ingress

STAGING, PRODUCTION = "mlops-demo-staging", "mlops-demo-production"
INFER = f"/seldon/{STAGING}/wine-classifier/v2/models/wine-classifier/infer"


@pytest.fixture(autouse=True)
def _kernels_find_the_target(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    if not any(ep.name == "kubernetes" for ep in entry_points(group="mlops_kit.targets")):
        # Until pyproject.toml declares the entry point, the kernels find it on their path.
        paths = [str(entry_point_path(tmp_path / "entry-point")), os.environ.get("PYTHONPATH")]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def test_notebooks_01_and_02_set_up_and_deploy_staging_on_kubernetes(tmp_path, monkeypatch):
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry

    state = tmp_path / "state"
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(write_project(tmp_path)))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(state))
    monkeypatch.setenv("MLOPS_KIT_ACTOR", "alice")
    monkeypatch.setenv("MLOPS_KIT_KUBERNETES__POLL_INTERVAL", "0.1")
    names = [str(NOTEBOOKS / "01_setup_cluster.ipynb"), str(NOTEBOOKS / "02_create_pipeline.ipynb")]
    params = {"target": "kubernetes", "apply_argocd": True, "n_estimators": 20}

    with (
        KubeEmulator() as emulator,
        IngressProxy() as ingress,
        PlayOperator(emulator, ingress=ingress, state_dir=tmp_path / "cluster") as operator,
    ):
        ensure_namespace(emulator, "argocd")  # where Argo CD is installed
        monkeypatch.setenv("KUBECONFIG", str(emulator.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.setenv("MLOPS_KIT_KUBERNETES__INGRESS_URL", ingress.url)
        runs = runner.run_notebooks(
            names, params, output_dir=tmp_path / "build", progress_bar=False
        )
        sdep = emulator.get(SELDON_DEPLOYMENTS, STAGING, "wine-classifier")
        hits = list(ingress.hits)
    assert [r.output.name for r in runs] == [
        "01_setup_cluster.ipynb",
        "02_create_pipeline.ipynb",
    ]
    assert operator.errors == []

    # Notebook 01: namespaces, Argo CD Applications committed and applied.
    for namespace in (STAGING, PRODUCTION):
        assert emulator.get(NAMESPACES, None, namespace) is not None
        app = emulator.get(ARGOCD_APPLICATIONS, "argocd", namespace)
        validate_application(app)
        assert app["spec"]["destination"]["namespace"] == namespace
    repo = GitOpsRepo(state / "gitops")
    assert yaml.safe_load(repo.read_file("main", "argocd/staging.yaml"))["spec"]["syncPolicy"][
        "automated"
    ] == {"prune": True, "selfHeal": True}

    # Notebook 02: the staging SeldonDeployment is the GitOps document, served and Available.
    committed = yaml.safe_load(repo.read_file("main", "environments/staging/wine-classifier.yaml"))
    validate(sdep)
    assert sdep["spec"] == committed["spec"]
    assert sdep["metadata"]["annotations"]["mlops-kit.io/model-version"] == "1"
    assert sdep["status"]["state"] == "Available"
    assert emulator.list(SELDON_DEPLOYMENTS, PRODUCTION) == []

    # The smoke test went through the ingress path convention and reached the model.
    infer = [(method, code) for method, path, code in hits if path == INFER]
    assert len(infer) >= 4 and set(infer) == {("POST", 200)}
    project = Project.load(state_dir=state)
    version = Registry(project).get(1)
    assert version.tags["mlops.smoke.staging"] == "passed"
    assert [r.status for r in Promotions(project).all()] == ["pending"]


def test_notebook_01_without_seldon_stops_with_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(write_project(tmp_path)))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(tmp_path / "state"))
    seeded_registry(tmp_path / "state")  # the registry's schema is not what this is about
    with KubeEmulator(crds=()) as emulator:
        monkeypatch.setenv("KUBECONFIG", str(emulator.write_kubeconfig(tmp_path / "kubeconfig")))
        with pytest.raises(runner.NotebookFailed) as caught:
            runner.run_notebooks(
                [str(NOTEBOOKS / "01_setup_cluster.ipynb")],
                {"target": "kubernetes"},
                output_dir=tmp_path / "build",
                progress_bar=False,
            )
    failed = caught.value
    assert (failed.ename, failed.exit_code) == ("ConfigError", 2)
    assert failed.evalue.startswith(
        "set-up failed: Seldon Core CRDs: SeldonDeployment CRD not found in the cluster"
    )
    assert "install Seldon Core v1 (helm install seldon-core seldon-core-operator" in failed.evalue
