"""Serving-side code that runs inside the model servers (MLServer runtimes).

Kept free of imports so that importing :mod:`mlops_kit.serving` costs nothing; import
:mod:`mlops_kit.serving.runtime` (which needs MLServer) explicitly.
"""

RUNTIME = "mlops_kit.serving.runtime.MLflowRuntime"
"""The ``implementation`` that model settings name to serve an MLflow model with our runtime."""

__all__ = ["RUNTIME"]
