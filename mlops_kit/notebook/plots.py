"""Figures for the notebooks: what a person would rather look at than read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.train.data import Dataset
    from mlops_kit.train.gates import GateVerdict


def held_out(model: Any, data: Dataset) -> Figure:
    """Where the model goes wrong on the held-out rows: a confusion matrix for classes,
    predicted against true values for regression."""
    if data.task == "regression":
        return predicted_vs_true(model, data)
    return confusion_matrix(model, data)


def predicted_vs_true(
    model: Any, data: Dataset, title: str = "Held-out predictions vs true values"
) -> Figure:
    """Each held-out row's prediction against its true value; the diagonal is perfect."""
    import matplotlib.pyplot as plt
    import numpy as np

    truth = np.asarray(data.y_test, dtype=float)
    predicted = np.asarray(model.predict(data.X_test), dtype=float).reshape(len(truth), -1)[:, 0]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(truth, predicted, s=12, alpha=0.7, color="#0969da")
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="#6e7781", linestyle="--", label="perfect")
    ax.set_xlabel(f"true {data.target}")
    ax.set_ylabel(f"predicted {data.target}")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


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
    lower = verdict.direction == "lower"
    marks = list(values)
    if verdict.min_value is not None:
        label = "ceiling" if lower else "floor"
        ax.axvline(verdict.min_value, color="black", linestyle="--", label=label)
        marks.append(verdict.min_value)
    if verdict.champion_value is not None:
        step = verdict.max_regression if lower else -verdict.max_regression
        limit = verdict.champion_value + step
        ax.axvline(limit, color="#bf8700", linestyle=":", label="regression limit")
        marks.append(limit)
    low, high = min(marks), max(marks)
    if low >= 0.0 and high <= 1.0:  # a score: show it up to 1, as before
        low, high = low - 0.05, 1.0
    else:
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 0.05
        low, high = low - pad, high + pad
    ax.set_xlim(low, high)
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
    shown = [*cand.values(), *cur.values()]
    if all(0.0 <= v <= 1.0 for v in shown):  # scores: zoom in below 1
        ax.set_ylim(max(0.0, min([*shown, 1.0]) - 0.1), 1.0)
    else:  # errors in the target's units (rmse, mae) beside scores
        ax.set_ylim(min([*shown, 0.0]) * 1.1, max([*shown, 1.0]) * 1.1)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{request.from_env} candidate vs {request.to_env}")
    fig.tight_layout()
    plt.close(fig)
    return fig


# -- load tests ----------------------------------------------------------------------------------

if TYPE_CHECKING:
    from mlops_kit.verify.loadtest import LoadTestResult, LoadTestRun, Slo

_PERCENTILE_COLOURS = {"p50": "#0969da", "p90": "#8250df", "p95": "#bf8700", "p99": "#cf222e"}


def load_latency(result: LoadTestResult, slo: Slo | None = None) -> Figure:
    """Latency percentiles of successful requests, second by second, with the p99 objective."""
    import matplotlib.pyplot as plt

    frame = result.timeline_frame()
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, colour in _PERCENTILE_COLOURS.items():
        ax.plot(frame["second"], frame[f"{name}_ms"], marker=".", color=colour, label=name)
    ax.plot(frame["second"], frame["max_ms"], color="#6e7781", linestyle=":", label="max")
    if slo is not None:
        ax.axhline(slo.p99_ms, color="black", linestyle="--", label=f"p99 SLO {slo.p99_ms:g} ms")
    ax.set_xlabel("second of the run")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left", ncol=3)
    overall = result.latency_ms
    p50, p99 = overall.get("p50"), overall.get("p99")
    shown = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms" if p50 is not None and p99 is not None else ""
    ax.set_title(f"Latency over time ({shown})" if shown else "Latency over time: no successes")
    fig.tight_layout()
    plt.close(fig)
    return fig


def load_throughput(result: LoadTestResult, slo: Slo | None = None) -> Figure:
    """Completed requests per second (bars) and running users (line) over the run."""
    import matplotlib.pyplot as plt

    frame = result.timeline_frame()
    fig, ax = plt.subplots(figsize=(7, 3))
    ok = frame["rps"] * (1 - frame["errors"] / frame["requests"].where(frame["requests"] > 0, 1))
    ax.bar(frame["second"], ok, color="#1a7f37", label="successful req/s")
    ax.bar(frame["second"], frame["rps"] - ok, bottom=ok, color="#cf222e", label="failed req/s")
    if slo is not None and slo.min_rps > 0:
        ax.axhline(slo.min_rps, color="black", linestyle="--", label=f"min {slo.min_rps:g} req/s")
    ax.set_xlabel("second of the run")
    ax.set_ylabel("requests / s")
    users = ax.twinx()
    users.step(frame["second"], frame["users"], where="mid", color="#6e7781", label="users")
    users.set_ylabel("users")
    users.set_ylim(0, max(int(frame["users"].max()), 1) * 1.35)
    ax.set_ylim(0, max(float(frame["rps"].max()), slo.min_rps if slo else 0.0, 1.0) * 1.35)
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = users.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=8, loc="upper left", ncol=4)
    ax.set_title(f"Throughput over time ({result.rps:.0f} req/s overall)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def load_errors(result: LoadTestResult) -> Figure:
    """Failed requests per second, stacked by HTTP status or by error when no answer came."""
    import matplotlib.pyplot as plt

    frame = result.timeline_frame()
    columns = [c for c in frame.columns if c.startswith("status_")]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    bottom = None
    for column in columns:
        values = frame[column].astype(float)
        ax.bar(frame["second"], values, bottom=bottom, label=column.removeprefix("status_"))
        bottom = values if bottom is None else bottom + values
    ax.set_xlabel("second of the run")
    ax.set_ylabel("failed requests")
    ax.set_xlim(-0.6, max(len(frame) - 0.4, 0.6))
    if columns:
        ax.legend(fontsize=8, loc="upper left", title="status", title_fontsize=8)
        ax.set_title(f"Errors over time ({result.failures} of {result.requests} requests)")
    else:
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "no errors", transform=ax.transAxes, ha="center", va="center")
        ax.set_title(f"Errors over time (none in {result.requests} requests)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def server_comparison(run: LoadTestRun) -> Figure:
    """Latency as the client measured it beside what the server's own metrics say."""
    import matplotlib.pyplot as plt
    import numpy as np

    names = ["mean", "p50", "p90", "p99"]
    client = [run.result.latency_ms.get(n) or 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(6, 3))
    x = np.arange(len(names))
    ax.bar(x - 0.2, client, 0.4, label=f"client ({run.result.requests} requests)")
    if run.server is not None:
        s = run.server
        server = [s.mean_ms, s.p50_ms, s.p90_ms, s.p99_ms]
        ax.bar(x + 0.2, [v or 0.0 for v in server], 0.4, label=f"server ({s.requests} requests)")
        if s.model_mean_ms is not None:
            ax.axhline(s.model_mean_ms, color="#6e7781", linestyle=":", label="mean in model")
        ax.set_title("Client vs server latency (server quantiles from histogram buckets)")
    else:
        ax.set_title(f"Client latency (no server metrics: {run.server_note})"[:80])
    ax.set_xticks(x, names)
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def rollout_timeline(request: PromotionRequest) -> Figure:
    """A progressive rollout phase by phase: the traffic split and each version's p99 and error
    rate, with the decision taken (next, pause, rollback ...)."""
    import matplotlib.pyplot as plt
    import numpy as np

    state = request.rollout or {}
    entries = [e for e in state.get("timeline", []) if "candidate" in e]
    fig, (split, latency) = plt.subplots(1, 2, figsize=(9, 3.2))
    title = (
        f"{state.get('strategy', 'replace')} rollout of v{request.candidate} to {request.to_env}"
    )
    fig.suptitle(f"{title}: {request.status}", fontsize=10)
    if not entries:
        for ax in (split, latency):
            ax.set_axis_off()
        split.text(0, 0.5, "no analysed phase (replace strategy, or not started)", fontsize=9)
        plt.close(fig)
        return fig
    x = np.arange(len(entries))
    names = [e["phase"] for e in entries]
    stable_w = [e["weights"]["stable"] for e in entries]
    cand_w = [e["weights"]["candidate"] for e in entries]
    split.bar(x, stable_w, color="#6e7781", label=f"stable v{state.get('stable', '?')}")
    split.bar(x, cand_w, bottom=stable_w, color="#0969da", label=f"candidate v{request.candidate}")
    colours = {"next": "#1a7f37", "pause": "#bf8700", "retry": "#bf8700"}
    for i, entry in enumerate(entries):
        colour = colours.get(entry["decision"], "#cf222e")
        split.text(i, 102, entry["decision"], ha="center", fontsize=8, color=colour)
    split.set_xticks(x, names, rotation=15, fontsize=8)
    split.set_ylim(0, 115)
    split.set_ylabel("% of live traffic")
    split.legend(fontsize=7, loc="lower right")
    for offset, role, colour in ((-0.2, "stable", "#6e7781"), (0.2, "candidate", "#0969da")):
        p99 = [e[role].get("p99_ms") or 0.0 for e in entries]
        bars = latency.bar(x + offset, p99, 0.4, color=colour, label=role)
        for bar, entry in zip(bars, entries, strict=True):
            figures = entry[role]
            label = f"{figures['requests']} req\n{figures['error_rate']:.0%} err"
            latency.text(bar.get_x() + 0.2, bar.get_height(), label, ha="center", fontsize=7)
    highest = max((e[r].get("p99_ms") or 0.0) for e in entries for r in ("stable", "candidate"))
    latency.set_ylim(0, max(highest, 1.0) * 1.35)
    latency.set_xticks(x, names, rotation=15, fontsize=8)
    latency.set_ylabel("p99 ms")
    latency.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    plt.close(fig)
    return fig
