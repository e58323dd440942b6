"""Promotion latency: from the start of ``mlops-kit approve`` to production answering with the
new version, under a polling client.

    .venv/bin/python benchmarks/promotion.py [--clients 2] [--rounds 3]

A fresh project (wine, 100-tree random forests) on the embedded default: staging serves each
version and passes its smoke test, production serves v1 (promoted the ordinary way), and a
promotion request for the next version waits for bob's approval. Clients post one-row V2
requests to production in a loop while ``mlops-kit approve <id> --as bob --key ...`` runs as a
subprocess (so its start-up counts, as it does for a person at a terminal); then the same swap
is done in-library (``Promotions.approve`` in this process) for the version after. Each round
promotes two versions that way. Prints, per round and as medians:

- until the new version answers: seconds from the start of the approval to the first answer
  from the new version;
- approve returned: seconds until the command (or call) returned, bookkeeping included;
- requests answered during it and how many failed (anything but 200, or no answer).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import workdir

APPROVER = "bob"
PROJECT = """\
model_name: wine-classifier
state_dir: state
environments:
  - name: staging
    kind: staging
  - name: production
    kind: production
    approval:
      approvers: [bob]
      four_eyes: true
      min_approvals: 1
"""


@dataclass
class Swap:
    how: str
    version: str
    until_new: float | None
    returned: float
    requests: int
    failed: int

    def row(self) -> str:
        new = f"{self.until_new:8.2f}" if self.until_new is not None else "   never"
        return (
            f"{self.how:<26} v{self.version:<4} {new} {self.returned:9.2f} "
            f"{self.requests:9d} {self.failed:7d}"
        )


HEADER = f"{'approval':<26} {'to':<5} {'new (s)':>8} {'done (s)':>9} {'requests':>9} {'failed':>7}"


class Poller:
    """Clients posting to production in a loop, each answer stamped with its time and version."""

    def __init__(self, url: str, body: dict, clients: int) -> None:
        self.url, self.body = url, body
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def __enter__(self) -> Poller:
        for thread in self._threads:
            thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10, trust_env=False) as http:
            for _ in range(200_000):  # bounded; stops when told
                if self._stop.is_set():
                    return
                try:
                    response = http.post(self.url, json=self.body)
                    ok = response.is_success
                    version = str(response.json().get("model_version", "")) if ok else ""
                    self.answers.append((time.monotonic(), response.status_code, version))
                except (httpx.HTTPError, ValueError):
                    self.answers.append((time.monotonic(), 0, ""))

    def since(self, started: float) -> list[tuple[float, int, str]]:
        return [a for a in self.answers if a[0] >= started]


def setup(root: Path):
    """The project: three staged versions per round, production serving v1."""
    from mlops_kit.gitops.deploy import deploy, smoke
    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.promote.signers import Signers
    from mlops_kit.promote.signing import demo_key_path
    from mlops_kit.registry.client import Registry
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    project_file = root / "mlops.yaml"
    project_file.write_text(PROJECT)
    project = Project.load(project_file)
    promotions = Promotions(project)
    Signers(promotions.repo).demo(project.state_dir, ["alice", APPROVER], actor="benchmark")
    data = load_dataset("wine")
    train_and_register(project, data, training_params(n_estimators=100))
    deploy(project, "staging", 1, actor="alice")
    smoke(project, "staging", 1)
    Registry(project).set_alias("staging", 1)
    request = promotions.open(1, requested_by="alice")
    key = demo_key_path(project.state_dir, APPROVER)
    promotions.approve(request.id, APPROVER, signing_key=key)
    return project, project_file, data, key


def next_request(project, data) -> tuple[str, str]:
    """Train, stage and request the promotion of a new version: ``(request id, version)``."""
    from mlops_kit.gitops.deploy import deploy, smoke
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.train.training import train_and_register, training_params

    version = train_and_register(project, data, training_params(n_estimators=100)).version
    deploy(project, "staging", version, actor="alice")
    smoke(project, "staging", version)
    request = Promotions(project).open(version, requested_by="alice")
    return request.id, str(version)


def measure(how: str, version: str, poller: Poller, approve) -> Swap:
    started = time.monotonic()
    approve()
    returned = time.monotonic() - started
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the last answers may still be on their way
        answers = poller.since(started)
        if any(v == version for _, _, v in answers):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    answers = poller.since(started)
    first = next((t for t, _, v in answers if v == version), None)
    failed = sum(1 for _, status, _ in answers if status != 200)
    until = None if first is None else first - started
    return Swap(how, version, until, returned, len(answers), failed)


def one_round(project, project_file: Path, data, key: Path, clients: int) -> list[Swap]:
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.targets import for_environment
    from mlops_kit.verify import v2

    url = for_environment(project.settings, "production").endpoint(project.model_name) + "/infer"
    body = v2.encode_dataframe(data.X_test.head(1))
    cli = [str(Path(sys.executable).parent / "mlops-kit"), "--config", str(project_file)]
    swaps = []
    request_id, version = next_request(project, data)
    with Poller(url, body, clients) as poller:
        command = [*cli, "approve", request_id, "--as", APPROVER, "--key", str(key)]

        def by_cli() -> None:
            subprocess.run(command, check=True, capture_output=True, timeout=300)

        swaps.append(measure("mlops-kit approve (CLI)", version, poller, by_cli))
    request_id, version = next_request(project, data)
    with Poller(url, body, clients) as poller:

        def in_library() -> None:
            Promotions(project).approve(request_id, APPROVER, signing_key=key)

        swaps.append(measure("Promotions.approve (lib)", version, poller, in_library))
    return swaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2, help="polling clients")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    args = parser.parse_args()
    from mlops_kit.targets.local import stop_all

    rounds: list[list[Swap]] = []
    with workdir() as tmp:
        project, project_file, data, key = setup(tmp)
        try:
            for number in range(1, args.rounds + 1):
                swaps = one_round(project, project_file, data, key, args.clients)
                rounds.append(swaps)
                print(f"\nround {number} of {args.rounds}\n{HEADER}")
                for swap in swaps:
                    print(swap.row())
        finally:
            stop_all(project.state_dir)
    print(f"\nmedians over {args.rounds} rounds, {args.clients} polling clients\n{HEADER}")
    for i, first in enumerate(rounds[0]):
        runs = [r[i] for r in rounds]
        news = [s.until_new for s in runs if s.until_new is not None]
        median = Swap(
            first.how,
            "n",
            statistics.median(news) if len(news) == len(runs) else None,
            statistics.median(s.returned for s in runs),
            int(statistics.median(s.requests for s in runs)),
            sum(s.failed for s in runs),
        )
        print(median.row())
    print("(failed: summed over the rounds; target: new version within 2 s, 0 failed)")


if __name__ == "__main__":
    main()
