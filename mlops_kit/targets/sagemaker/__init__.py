"""The SageMaker target: training jobs, endpoints and the model registry of Amazon SageMaker.

The seed pipeline's stages, through boto3 (extra ``sagemaker``): :mod:`.training_jobs` trains
with the BYO image and registers the result in MLflow, :mod:`.target` serves each model of an
environment from the endpoint ``<model>-<environment>`` (:mod:`.endpoints`: a Model and an
EndpointConfig per version, updated blue/green), :mod:`.model_packages` mirrors our promotion
decisions into SageMaker's model registry, :mod:`.artifacts` packs ``model.tar.gz``. Settings:
the ``sagemaker:`` section (:class:`~mlops_kit.settings_sagemaker.SageMakerSettings`).
"""

from mlops_kit.targets.sagemaker.target import SageMakerTarget

__all__ = ["SageMakerTarget"]
