"""Figures for the notebooks: what a person would rather look at than read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlops_kit.approvals import PromotionRequest
    from mlops_kit.gates import GateVerdict
    from mlops_kit.training import Dataset


def confusion_matrix(model: Any, data: Dataset, title: str = "Held-out confusion matrix") -> Figure:
    """Confusion matrix of ``model`` on the held-out split."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(
        data.y_test,
        model.predict(data.X_test),
        display_labels=data.target_names,
        ax=ax,
        colorbar=False,
    )
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def gate_chart(verdict: GateVerdict) -> Figure:
    """Challenger vs champion on the gate metric, with the floor and the regression limit."""
    import matplotlib.pyplot as plt

    labels = [f"challenger v{verdict.challenger_version}"]
    values = [verdict.challenger_value]
    if verdict.champion_version is not None and verdict.champion_value is not None:
        labels.append(f"champion v{verdict.champion_version}")
        values.append(verdict.champion_value)
    fig, ax = plt.subplots(figsize=(5, 3))
    colours = ["#1a7f37" if verdict.passed else "#cf222e", "#6e7781"][: len(values)]
    ax.barh(labels, values, color=colours)
    ax.axvline(verdict.min_value, color="black", linestyle="--", label="floor")
    if verdict.champion_value is not None:
        limit = verdict.champion_value - verdict.max_regression
        ax.axvline(limit, color="#bf8700", linestyle=":", label="regression limit")
    ax.set_xlim(min(values + [verdict.min_value]) - 0.05, 1.0)
    ax.set_xlabel(verdict.metric)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("PASSED" if verdict.passed else "FAILED")
    fig.tight_layout()
    plt.close(fig)
    return fig


def metric_comparison(request: PromotionRequest) -> Figure:
    """Candidate vs the version the target environment serves, metric by metric."""
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = request.evidence.get("metrics", {})
    cand = metrics.get("candidate", {})
    cur = metrics.get("current", {})
    names = sorted(cand)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(x - 0.2, [cand[n] for n in names], 0.4, label=f"candidate v{request.candidate}")
    if cur:
        ax.bar(x + 0.2, [cur.get(n, 0) for n in names], 0.4, label=f"current v{request.current}")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylim(max(0.0, min([*cand.values(), *cur.values(), 1.0]) - 0.1), 1.0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{request.from_env} candidate vs {request.to_env}")
    fig.tight_layout()
    plt.close(fig)
    return fig
