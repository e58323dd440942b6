"""Amazon SageMaker: the bring-your-own container that trains and serves the project's model.

:mod:`~.container` writes the image's build context and packs models as ``model.tar.gz``;
:mod:`~.byo` holds the programs the image runs.
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
    "encode_hyperparameters",
    "metric_definitions",
    "pack_model",
    "unpack_model",
    "write_build_context",
    "write_channels",
]
