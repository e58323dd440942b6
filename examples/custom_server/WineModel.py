"""A user's model class for the custom-server flavour (seldon-core's Python wrapper).

seldon-core's wrapper imports this module, builds ``WineModel(**parameters)`` once per server
and calls ``predict`` for every request on ``/api/v1.0/predictions``. mlops-kit's local target
passes the registered model's artifact directory (an MLflow model directory) as the
``model_uri`` parameter and as ``$MODEL_URI``, the way Seldon Core passes a deployment's
``modelUri`` after its storage initializer downloaded it.

This class loads the scikit-learn estimator MLflow saved inside that directory with skops (or
pickle), so the seldon environment needs scikit-learn, skops and pandas but not MLflow. Serve it
with ``serving.flavour: custom``, ``serving.custom_class: WineModel:WineModel`` and
``serving.custom_code_dir`` pointing at this directory (see docs/custom-server.md).
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


class WineModel:
    """Predicts wine classes with the registered model's own estimator."""

    def __init__(self, model_uri: str | None = None) -> None:
        uri = model_uri or os.environ.get("MODEL_URI")
        if not uri:
            raise ValueError("no model_uri parameter and no $MODEL_URI: nothing to load")
        self.model_dir = Path(uri.removeprefix("file://"))
        self.model = _load_estimator(self.model_dir)
        # The columns the estimator was fitted with: requests may name them in another order.
        self.features: list[str] | None = list(getattr(self.model, "feature_names_in_", [])) or None
        logger.info("loaded %s from %s", type(self.model).__name__, self.model_dir)

    def predict(self, X: Any, features_names: list[str] | None = None, **kwargs: Any) -> np.ndarray:
        """Class ids for the rows of ``X``, one per row.

        ``features_names`` are the request's ``data.names``; when the estimator knows its
        columns, rows are reordered to them (and a missing column is an error).
        """
        rows = np.asarray(X)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if features_names and self.features:
            missing = sorted(set(self.features) - set(features_names))
            if missing:
                raise ValueError(f"the request lacks the columns {missing}")
            frame = pd.DataFrame(rows, columns=list(features_names))[self.features]
            return np.asarray(self.model.predict(frame.astype(float)))
        return np.asarray(self.model.predict(rows))


def _load_estimator(model_dir: Path) -> Any:
    """The estimator in an MLflow scikit-learn model directory (skops or pickle format)."""
    if (model_dir / "model.skops").is_file():
        import skops.io

        path = model_dir / "model.skops"
        # skops refuses types it does not know to be safe unless they are listed; these are the
        # project's own registered models, so the types the file declares are trusted.
        return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    for name in ("model.pkl", "model.pickle"):
        if (model_dir / name).is_file():
            with open(model_dir / name, "rb") as handle:
                return pickle.load(handle)  # noqa: S301 - the project's own registered model
    raise FileNotFoundError(f"no model.skops or model.pkl in {model_dir}")
