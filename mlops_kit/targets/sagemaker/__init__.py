"""The SageMaker target: training jobs, endpoints and the model registry of Amazon SageMaker.

The seed pipeline's stages, through boto3 (extra ``sagemaker``): :mod:`.training_jobs` trains
with the bring-your-own image and registers the result in MLflow, :mod:`.target` serves each
model of an environment from the endpoint ``<model>-<environment>`` (:mod:`.endpoints`: a Model
and an EndpointConfig per version, updated blue/green), :mod:`.model_packages` mirrors our
promotion decisions into SageMaker's model registry, :mod:`.artifacts` uploads
``model.tar.gz``. :mod:`.container` writes the image's build context and packs models;
:mod:`.byo` holds the programs the image runs (``train``, ``serve``). Settings: the
``sagemaker:`` section (:class:`~mlops_kit.settings_sagemaker.SageMakerSettings`).
"""

from mlops_kit.targets.sagemaker.byo.data import write_channels
from mlops_kit.targets.sagemaker.byo.hyperparameters import encode as encode_hyperparameters
from mlops_kit.targets.sagemaker.container import (
    metric_definitions,
    pack_model,
    unpack_model,
    write_build_context,
)

__all__ = [
    "SageMakerTarget",
    "encode_hyperparameters",
    "metric_definitions",
    "pack_model",
    "unpack_model",
    "write_build_context",
    "write_channels",
]


def __getattr__(name: str) -> object:
    # The image's programs import this package too, and the image installs only what they
    # need: the target (boto3 clients, the process layer) loads when it is asked for.
    if name == "SageMakerTarget":
        from mlops_kit.targets.sagemaker.target import SageMakerTarget

        return SageMakerTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
