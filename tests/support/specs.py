"""Sample deployment specs, one per server flavour."""

from __future__ import annotations

from mlops_kit.deployment import DeploymentSpec, Resources

SPECS = {
    "mlflow": DeploymentSpec(
        environment="staging",
        model_name="wine-classifier",
        version="3",
        model_uri="s3://models/wine-classifier/3/artifacts",
        run_id="0f3c2a9d41b84e0c9d1e",
        replicas=2,
    ),
    "sklearn": DeploymentSpec(
        environment="production",
        model_name="iris",
        version="12",
        model_uri="gs://bucket/iris/12",
        flavour="sklearn",
        replicas=0,
        traffic=0,
        resources=Resources(cpu_request="250m", memory_request="256Mi", cpu_limit=None),
    ),
    "custom": DeploymentSpec(
        environment="staging",
        model_name="wine-classifier",
        version="4",
        model_uri="file:///srv/models/wine/4",
        flavour="custom",
        run_id="r4",
        traffic=25,
        image="registry.example.com/wine-server:1.2",
        custom_class="wine_server:WineModel",
        resources=Resources(memory_limit=None, cpu_limit=None),
    ),
    "embedded": DeploymentSpec(
        environment="production",
        model_name="wine-classifier",
        version="5",
        model_uri="/tmp/mlruns/5/artifacts/model",
        flavour="embedded",
        replicas=3,
        image="registry.example.com/wine-embedded:5",
    ),
}
