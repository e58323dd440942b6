"""Serving-side code that runs inside the model servers (MLServer runtimes).

Kept free of imports so that importing :mod:`mlops_kit.serving` costs nothing; import
:mod:`mlops_kit.serving.runtime` (which needs MLServer) explicitly.
"""

RUNTIME = "mlops_kit.serving.runtime.MLflowRuntime"
"""The ``implementation`` that model settings name to serve an MLflow model with our runtime."""

CONTROL_TOKEN_ENV = "MLOPS_KIT_CONTROL_TOKEN"  # noqa: S105 - a variable's name
"""The variable that hands a server its control token (never the command line: ``ps``); the
model-repository API (load, unload) needs the token (:mod:`mlops_kit.serving.server`)."""

__all__ = ["CONTROL_TOKEN_ENV", "RUNTIME"]
