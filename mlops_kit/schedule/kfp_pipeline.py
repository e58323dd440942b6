"""A scheduled run as a Kubeflow Pipelines v2 pipeline (seed 004's engine), compiled with kfp.

Each step of the run is a container component in the project image, the steps chained in
order, each retried with exponential backoff as the schedule's ``retries`` say, caching off
(a scheduled run must really retrain). This module imports nothing from mlops-kit, only the
standard library and ``kfp``: kfp pins ``kubernetes<31`` and so cannot share an environment
with ``mlops-kit[kubernetes]``; :func:`mlops_kit.schedule.scaleout.compile_kfp` runs it as a
script in an environment that has kfp when the toolkit's own has not::

    python kfp_pipeline.py SPEC.json OUTPUT.yaml

Annotations stay real objects here (no ``from __future__ import annotations``): kfp reads
them. ``SPEC.json``: ``{"name", "description", "image", "retries", "backoff_s", "steps": [{"name",
"command": [...], "env": {...}}]}``.
"""

import json
import sys
from typing import Any


def build(spec: dict[str, Any]) -> Any:
    """The ``@dsl.pipeline`` function of ``spec``."""
    from kfp import dsl

    components = [_component(dsl, spec["image"], step) for step in spec["steps"]]

    @dsl.pipeline(name=spec["name"], description=spec.get("description", ""))
    def pipeline():  # kfp reads the signature: no annotations
        previous = None
        for component, step in zip(components, spec["steps"], strict=True):
            task = component()
            task.set_display_name(step["name"])
            task.set_caching_options(False)
            if spec.get("retries"):
                task.set_retry(
                    num_retries=spec["retries"],
                    backoff_duration=f"{int(spec.get('backoff_s', 10))}s",
                    backoff_factor=2.0,
                )
            for key, value in step.get("env", {}).items():
                task.set_env_variable(key, value)
            if previous is not None:
                task.after(previous)
            previous = task

    return pipeline


def _component(dsl: Any, image: str, step: dict[str, Any]) -> Any:
    command = list(step["command"])

    def run_step():  # kfp: no return annotation but ContainerSpec
        return dsl.ContainerSpec(image=image, command=command[:1], args=command[1:])

    # The component's name is its function's: one per step.
    run_step.__name__ = step["name"].replace("-", "_")
    return dsl.container_component(run_step)


def compile_spec(spec: dict[str, Any], output: str) -> str:
    """Compile ``spec`` to the pipeline's IR YAML at ``output``; returns ``output``."""
    from kfp import compiler

    compiler.Compiler().compile(build(spec), output)
    return output


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: kfp_pipeline.py SPEC.json OUTPUT.yaml", file=sys.stderr)  # noqa: T201
        return 2
    with open(argv[0]) as handle:
        spec = json.load(handle)
    compile_spec(spec, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
