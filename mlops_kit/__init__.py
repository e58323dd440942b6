"""mlops-kit: notebook-driven CI/CD for ML models on one machine, Kubernetes or SageMaker."""

from mlops_kit.errors import ConfigError, GateFailed, ToolkitError

__version__ = "0.1.0"

__all__ = ["ConfigError", "GateFailed", "ToolkitError", "__version__"]
