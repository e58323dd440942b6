"""An MLflow model (from code) with a test hook inside: it misbehaves on live traffic.

It answers its own input example correctly (so it passes the smoke tests every version must
pass before it may be promoted) and misbehaves on every other row, the way a candidate fit
only for its test set would: ``fault: error`` raises (HTTP 500), ``fault: slow`` sleeps
``delay`` seconds first. ``model_config`` sets both and ``spare``: the first-column values of
the rows it answers correctly. Logged with ``python_model=<this file>``: the server loads the
file from the model's artifacts, never from the tests.
"""

import time

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class Faulty(PythonModel):
    def load_context(self, context):
        config = context.model_config or {}
        self.fault = config.get("fault", "error")
        self.delay = float(config.get("delay", 0.5))
        self.spare = {round(float(v), 6) for v in config.get("spare", [])}

    def predict(self, context, model_input, params=None):
        first = model_input.iloc[:, 0].astype(float).round(6)
        if not first.isin(self.spare).all():
            if self.fault == "error":
                raise RuntimeError("test hook: this candidate fails on live traffic")
            time.sleep(self.delay)
        return np.full(len(model_input), 1, dtype="int64")


mlflow.models.set_model(Faulty())
