"""``mlops-kit monitor``: the local Prometheus over every local endpoint (``down`` stops it)."""

from __future__ import annotations

import argparse

from mlops_kit.cli._common import AddCommand, project


def cmd_monitor(args: argparse.Namespace) -> int:
    from mlops_kit.verify.monitoring import prometheus

    proj = project(args)
    if args.stop:
        print("stopped Prometheus" if prometheus.stop(proj) else "Prometheus was not running")
        return 0
    if args.status:
        running = prometheus.status(proj)
        print(running.summary() if running else "Prometheus is not running")
        return 0 if running else 1
    running = prometheus.start(proj, port=args.port)
    print(running.summary())
    if args.query:
        from mlops_kit.verify.monitoring import PrometheusClient

        with PrometheusClient(running.url) as client:
            for sample in client.query(args.query):
                labels = ", ".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                print(f"{{{labels}}} {sample.value:g}")
    return 0


def register(add: AddCommand) -> None:
    """Add monitor."""
    mon = add(
        "monitor",
        "start the local Prometheus scraping every local endpoint (stopped by down)",
        "mlops-kit monitor\nmlops-kit monitor --query 'sum by (version) "
        "(rate(mlops_kit_inferences_total[30s]))'\nmlops-kit monitor --stop",
        cmd_monitor,
    )
    mon.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one, recorded)"
    )
    mon.add_argument("--query", metavar="PROMQL", help="evaluate a PromQL expression and print it")
    mon.add_argument("--status", action="store_true", help="say whether it runs, and where")
    mon.add_argument("--stop", action="store_true", help="stop it")
