"""Alias events from real MLflow webhooks (one ``mlflow server`` per module) and from polling."""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import time
import uuid
from pathlib import Path

import pytest

from mlops_kit.errors import ConfigError, RegistryError
from mlops_kit.process import wait_until
from mlops_kit.project import Project
from mlops_kit.registry import server as registry_server
from mlops_kit.registry.events import (
    AliasEvent,
    PollSource,
    WebhookSource,
    alias_events,
    prune_stale_webhooks,
    sign,
    supports_webhooks,
    verify_signature,
)
from tests.support import mlflow_globals_restored, seeded_registry, write_project

pytestmark = pytest.mark.slow

MODEL = "iris-events"
OTHER = "other-model"
SECRET = "a-test-secret-never-logged"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A registry server with MODEL (versions 1, 2) and OTHER (version 1); stopped at the end."""
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    root = tmp_path_factory.mktemp("events")
    with pytest.MonkeyPatch.context() as mp, mlflow_globals_restored():
        mp.chdir(root)
        seeded_registry(root / ".mlops")  # the registry's schema is not what these are about
        local = Project.load(write_project(root), state_dir=root / ".mlops", model_name=MODEL)
        try:
            project = registry_server.served(local)
            result = train_and_register(
                project, load_dataset("iris"), training_params(n_estimators=5)
            )
            client = project.client
            first = client.get_model_version(MODEL, result.version)
            same = {"run_id": first.run_id, "model_id": first.source.removeprefix("models:/")}
            client.create_model_version(MODEL, first.source, **same)
            client.create_registered_model(OTHER)
            client.create_model_version(OTHER, first.source, **same)
            yield project
        finally:
            registry_server.stop(local)


@pytest.fixture
def project(registry: Project) -> Project:
    """The served project with no alias set on either model."""
    client = registry.client
    for name in (MODEL, OTHER):
        for alias in client.get_registered_model(name).aliases:
            client.delete_registered_model_alias(name, alias)
    return registry


def direct_client(project: Project):
    """A client on the server's SQLite file itself: its writes fire no webhook."""
    from mlflow import MlflowClient

    uri = registry_server.backend_uri(project)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def next_event(source, timeout: float = 5.0) -> AliasEvent | None:
    return next(source.events(timeout=timeout), None)


def post(source: WebhookSource, body: bytes, headers: dict[str, str], path: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", source.port, timeout=5)
    try:
        conn.request("POST", path or "/mlflow/webhook", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def delivery(version: str, *, secret: str = SECRET, age: float = 0.0, body: bytes | None = None):
    """A delivery signed as MLflow signs it (its own signing function, not ours)."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    if body is None:
        payload = {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2026-11-23T00:00:00+00:00",
            "data": {"name": MODEL, "alias": "staging", "version": version},
        }
        body = json.dumps(payload).encode()
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time() - age))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": _generate_hmac_signature(
            secret, delivery_id, timestamp, body.decode()
        ),
    }
    return body, headers


def test_staging_moves_reach_the_webhook_source_fast(project: Project) -> None:
    client = project.client
    assert supports_webhooks(project)
    latencies, arrivals = [], []
    with WebhookSource(project, aliases=("staging",), reconcile_interval=None) as source:
        assert source.url.startswith("http://127.0.0.1:")
        for move, version in enumerate(["1", "2", "1", "2", "1"]):
            started = time.time()
            client.set_registered_model_alias(MODEL, "staging", version)
            event = next_event(source)
            latencies.append(time.time() - started)
            assert event is not None, f"move {move} to version {version} never arrived"
            arrivals.append(event.received_at.timestamp() - started)
            assert (event.model_name, event.alias, event.version) == (MODEL, "staging", version)
            assert (event.action, event.source) == ("set", "webhook")
            assert event.delivery_id
        client.delete_registered_model_alias(MODEL, "staging")
        deleted = next_event(source)
        assert deleted is not None
        assert (deleted.action, deleted.version, deleted.previous) == ("deleted", None, "1")
        assert source.stats.rejected == 0
    print(
        "\nwebhook latency alias set -> event (s): "
        f"min {min(latencies):.3f} median {statistics.median(latencies):.3f} "
        f"max {max(latencies):.3f}; set -> receiver {statistics.median(arrivals):.3f} median"
    )
    assert max(latencies) < 5.0


def test_other_models_and_aliases_are_ignored(project: Project) -> None:
    client = project.client
    with WebhookSource(project, aliases=("staging",), reconcile_interval=None) as source:
        ignored = source.stats.ignored  # the server's test delivery at start is one
        client.set_registered_model_alias(OTHER, "staging", "1")
        client.set_registered_model_alias(MODEL, "production", "1")
        wait_until(lambda: source.stats.ignored == ignored + 2, timeout=5, interval=0.02)
        assert list(source.events(timeout=0.2)) == []
        client.set_registered_model_alias(MODEL, "staging", "2")
        event = next_event(source)
        assert event is not None
        assert (event.model_name, event.alias, event.version) == (MODEL, "staging", "2")


def test_receiver_checks_signature_timestamp_and_duplicates(project: Project) -> None:
    with WebhookSource(
        project, aliases=("staging",), secret=SECRET, reconcile_interval=None
    ) as source:
        assert SECRET not in repr(source)
        body, headers = delivery("1", secret="not-the-secret")
        assert post(source, body, headers) == 401
        body, headers = delivery("1")
        assert post(source, body, {**headers, "X-MLflow-Signature": ""}) == 401
        assert post(source, body, {**headers, "X-MLflow-Signature": "v1,AAAA"}) == 401
        assert post(source, *delivery("1", age=600)) == 400
        assert post(source, *delivery("1", body=b"{not json")) == 400
        assert post(source, *delivery("1"), path="/elsewhere") == 404
        assert source.stats.rejected == 5 and source.stats.accepted == 0

        # A validly signed delivery is a signal to re-read, not a fact: nothing moved, no event.
        assert post(source, *delivery("1")) == 200
        # Its re-read is done before the alias moves (a slow watcher would see the move).
        wait_until(source.settled, timeout=10, interval=0.02)
        assert list(source.events(timeout=0.3)) == []

        # Move the alias behind the server's back (no webhook), then deliver the news twice.
        direct_client(project).set_registered_model_alias(MODEL, "staging", "2")
        body, headers = delivery("2")
        assert post(source, body, headers) == 200
        event = next_event(source)
        assert event is not None
        assert event.version == "2" and event.delivery_id == headers["X-MLflow-Delivery-Id"]
        assert post(source, body, headers) == 200
        assert source.stats.duplicates == 1
        assert list(source.events(timeout=0.3)) == []


def test_reconcile_catches_moves_no_webhook_reports(project: Project) -> None:
    with WebhookSource(project, aliases=("staging",), reconcile_interval=0.3) as source:
        direct_client(project).set_registered_model_alias(MODEL, "staging", "1")
        event = next_event(source, timeout=3)
        assert event is not None
        assert (event.version, event.source, event.delivery_id) == ("1", "poll", None)


def test_close_deletes_the_webhook_and_stale_ones_are_pruned(project: Project) -> None:
    client = project.client
    with alias_events(project) as source:
        assert isinstance(source, WebhookSource)
        webhook_id, port = source.webhook_id, source.port
        assert webhook_id in {w.webhook_id for w in client.list_webhooks()}
    assert webhook_id not in {w.webhook_id for w in client.list_webhooks()}
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    source.close()  # idempotent

    # a source that died without closing leaves its webhook behind: the next one prunes it
    dead = client.create_webhook(
        name="mlops-kit-dead-receiver",
        url=f"http://127.0.0.1:{port}/mlflow/webhook",
        events=["model_version_alias.created"],
    )
    assert prune_stale_webhooks(project) == [dead.webhook_id]
    assert client.list_webhooks() == []


def test_unreachable_receiver_falls_back_to_polling(project: Project) -> None:
    client = project.client
    # The server posts its test delivery to a URL that answers 405: the self-check fails.
    source = WebhookSource(project, callback_url=f"{project.tracking_uri}/health")
    with pytest.raises(RegistryError, match="could not deliver a test webhook"):
        source.start()
    assert client.list_webhooks() == []
    with alias_events(project, callback_url=f"{project.tracking_uri}/health") as fallback:
        assert isinstance(fallback, PollSource)
    with pytest.raises(RegistryError, match="start the alias event source"):
        next(WebhookSource(project).events(timeout=0))


def test_undecryptable_webhook_secrets_fall_back_fast(project: Project, caplog) -> None:
    """A webhook stored under another encryption key makes the server answer 500 to listing."""
    import sqlite3

    db = sqlite3.connect(project.state_dir / "mlflow.db")
    try:
        with db:
            db.execute(
                "INSERT INTO webhooks (webhook_id, name, url, status, secret, creation_timestamp)"
                " VALUES ('foreign', 'foreign', 'http://127.0.0.1:9/x', 'ACTIVE', 'gAAAAbad', 0)"
            )
        started = time.monotonic()
        assert not supports_webhooks(project)
        with (
            caplog.at_level("INFO", logger="mlops_kit.registry.events"),
            alias_events(project, interval=0.5) as source,
        ):
            assert isinstance(source, PollSource)
        assert time.monotonic() - started < 10  # MLflow's client would retry for minutes
        assert "fails to list its webhooks (500)" in caplog.text
    finally:
        with db:
            db.execute("DELETE FROM webhooks WHERE webhook_id = 'foreign'")
        db.close()


def test_our_signature_is_mlflows() -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = b'{"entity": "model_version_alias", "data": {"name": "m\\u00e9"}}'
    theirs = _generate_hmac_signature(SECRET, "id-1", "1700000000", body.decode())
    assert sign(SECRET, "id-1", "1700000000", body) == theirs
    assert verify_signature(SECRET, "id-1", "1700000000", body, f"v1,old {theirs}")
    assert not verify_signature(SECRET, "id-2", "1700000000", body, theirs)


def test_webhooks_need_a_registry_server(tmp_path: Path) -> None:
    project = Project.load(state_dir=tmp_path / ".mlops")
    with pytest.raises(ConfigError, match="registry server.*polling"):
        WebhookSource(project)


def test_poll_source_sees_moves_made_directly_on_sqlite(tmp_path: Path) -> None:
    project = Project.load(state_dir=tmp_path / ".mlops", model_name="polled")
    client = project.client
    client.create_registered_model("polled")
    for _ in range(2):
        client.create_model_version("polled", source=(tmp_path / "model").as_uri())
    client.set_registered_model_alias("polled", "staging", "1")
    interval = 0.25
    latencies = []
    with alias_events(project, interval=interval) as source:
        assert isinstance(source, PollSource)
        assert source.known == {"staging": "1"}
        assert list(source.events(timeout=2 * interval)) == []  # the baseline is no event
        for version in ["2", "1", "2"]:
            started = time.time()
            client.set_registered_model_alias("polled", "staging", version)
            event = next_event(source, timeout=interval + 2)
            latencies.append(time.time() - started)
            assert event is not None
            assert (event.version, event.action, event.source) == (version, "set", "poll")
        client.delete_registered_model_alias("polled", "staging")
        event = next_event(source, timeout=interval + 2)
        assert event is not None and (event.action, event.previous) == ("deleted", "2")
    print(
        f"\npoll latency at interval {interval} s: min {min(latencies):.3f} "
        f"median {statistics.median(latencies):.3f} max {max(latencies):.3f}"
    )
    assert max(latencies) < interval + 1.0
    assert list(source.events(timeout=0.1)) == []  # closed: returns at once
