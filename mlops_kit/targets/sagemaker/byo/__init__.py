"""The programs inside the SageMaker bring-your-own container, and the contract they keep.

SageMaker runs the image as ``docker run IMAGE train`` for a training job and
``docker run IMAGE serve`` for an endpoint; the image's ``train`` and ``serve`` scripts run
:mod:`~.train` and :mod:`~.serve`. :mod:`~.contract` is where SageMaker puts their inputs,
:mod:`~.hyperparameters` and :mod:`~.data` what a training job reads, :mod:`~.decode` the
request bodies an endpoint reads. Nothing here imports SageMaker's SDK or boto3: the
programs see only files, environment variables and HTTP.
"""
