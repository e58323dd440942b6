"""Snapshots tied to versions: the input files and step outputs that made a registered version.

A snapshot is a JSON manifest stored in the content-addressed store (:mod:`.store`): the
version, its MLflow run, the training settings and the code commit it was trained with, its
metrics, each input file (name, sha256, size) and the sha256 of every step output. The
manifest's own sha256 is the version's ``mlops.snapshot`` tag; the files are blobs of the store.
Nothing in a snapshot ever changes: a changed byte changes its digest, and every read checks it
(:class:`~mlops_kit.errors.SnapshotCorrupt`).

:func:`restore` writes the input files back, byte for byte; :mod:`.reproduce` re-runs the
pipeline on them. With ``pipeline.volume`` set, a ``VolumeSnapshot`` of the data's volume is
committed to the GitOps repository as well (:mod:`mlops_kit.gitops.volume_snapshots`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import ConfigError, SnapshotNotFound
from mlops_kit.pipeline.store import ContentStore, sha256

if TYPE_CHECKING:
    from mlops_kit.project import Project

TAG = "mlops.snapshot"
"""The registry tag of a version holding its snapshot's digest."""
DIGEST_LENGTH = 32
"""Characters of the data digest MLflow keeps for a dataset input (its column holds 36)."""


@dataclass(frozen=True)
class Snapshot(display.Rich):
    """What made one registered version, by content."""

    model: str
    version: str
    run_id: str
    created: str
    commit: str
    """The git commit the version was trained from (``-dirty`` when the tree was modified)."""
    source: str
    """Where the data was read: a path, an ``s3://`` URI, or ``sklearn:<name>``."""
    training: dict[str, Any]
    """The training settings it was trained with (``training:``, as JSON)."""
    metrics: dict[str, float]
    inputs: list[dict[str, Any]]
    """``name``, ``sha256`` and ``size`` of each input file."""
    outputs: dict[str, str] = field(default_factory=dict)
    """sha256 of each step output, by name."""

    @property
    def data_digest(self) -> str:
        """sha256 over the input files' names and digests: the data, whatever its form."""
        listing = "\n".join(f"{i['name']} {i['sha256']}" for i in self.inputs)
        return sha256(listing.encode())

    @property
    def size(self) -> int:
        """Bytes of the input files."""
        return sum(int(i["size"]) for i in self.inputs)

    def to_bytes(self) -> bytes:
        """The manifest as stored (sorted keys: equal snapshots, equal bytes)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"

    def row(self, digest: str) -> dict[str, Any]:
        """One line of ``mlops-kit snapshots``."""
        return {
            "version": self.version,
            "digest": digest[:12],
            "files": len(self.inputs),
            "size": _size(self.size),
            "created": self.created.replace("T", " ").removesuffix("+00:00"),
            "source": self.source,
        }

    def _repr_html_(self) -> str:
        files = [{"file": i["name"], "sha256": i["sha256"][:16], "bytes": i["size"]}
                 for i in self.inputs]  # fmt: skip
        return display.section(
            f"Snapshot of {self.model} v{self.version}",
            display.fields({"source": self.source, "commit": self.commit, "run": self.run_id}),
            display.table(files),
        )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"


def log_input(dataset: Any, inputs: list[Any]) -> None:
    """Log the training data as the active MLflow run's dataset input (digest and source)."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    listing = "\n".join(f"{i.name} {i.sha256}" for i in inputs)
    table = dataset.X_train.assign(**{dataset.target: dataset.y_train})
    # A bundled set has no location MLflow can resolve: it records the code that logged it.
    where = {} if dataset.source.startswith("sklearn:") else {"source": dataset.source}
    with warnings.catch_warnings():
        # A local path "can be interpreted in multiple ways"; integer labels get a "Hint".
        warnings.simplefilter("ignore", UserWarning)
        logged = from_pandas(
            table,
            targets=dataset.target,
            name=dataset.name,
            digest=sha256(listing.encode())[:DIGEST_LENGTH],
            **where,
        )
        mlflow.log_input(logged, context="training")


def create(
    project: Project,
    store: ContentStore,
    result: Any,
    training: Any,
    inputs: list[Any],
    outputs: dict[str, str],
) -> str:
    """Store the snapshot of a just registered version, tag the version with its digest.

    Also commits the version's VolumeSnapshot when ``pipeline.volume`` is set.
    """
    from mlops_kit.gitops import volume_snapshots
    from mlops_kit.gitops.deploy import current_actor
    from mlops_kit.gitops.repository import GitOpsRepo

    snapshot = Snapshot(
        model=result.model_name,
        version=str(result.version),
        run_id=result.run_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        commit=result.lineage.get("mlops.git_commit", "unversioned"),
        source=result.lineage.get("mlops.data_source", ""),
        training=training.model_dump(mode="json"),
        metrics=dict(result.metrics),
        inputs=[asdict(i) for i in inputs],
        outputs=outputs,
    )
    digest = store.put(snapshot.to_bytes())
    project.client.set_model_version_tag(result.model_name, str(result.version), TAG, digest)
    settings = project.settings
    if settings.pipeline.volume is not None:
        repo = GitOpsRepo.from_settings(settings)
        volume_snapshots.commit(repo, settings, str(result.version), digest, actor=current_actor())
    return digest


def load(store: ContentStore, digest: str) -> Snapshot:
    """The snapshot stored under ``digest`` (checked against it)."""
    return Snapshot(**json.loads(store.get(digest)))


def for_version(project: Project, version: str | int) -> tuple[str, Snapshot]:
    """The digest and snapshot of a registered version; SnapshotNotFound if it has none."""
    from mlops_kit.registry.client import Registry

    info = Registry(project).get(version)
    digest = info.tags.get(TAG)
    if not digest:
        raise SnapshotNotFound(project.model_name, str(version))
    return digest, load(ContentStore.for_project(project), digest)


def listing(project: Project) -> list[dict[str, Any]]:
    """A row per version that has a snapshot, newest first."""
    from mlops_kit.registry.client import Registry

    store = ContentStore.for_project(project)
    rows = []
    for info in Registry(project).versions():
        digest = info.tags.get(TAG)
        if digest:
            rows.append(load(store, digest).row(digest))
    return rows


def restore(project: Project, version: str | int, to: Path, *, force: bool = False) -> list[Path]:
    """Write version ``version``'s input files into ``to``, byte-identical; the paths written.

    Refuses a non-empty directory unless ``force``; every file is checked against its sha256
    before it is written and after (SnapshotCorrupt).
    """
    _, snapshot = for_version(project, version)
    return write_inputs(ContentStore.for_project(project), snapshot, to, force=force)


def write_inputs(store: ContentStore, snapshot: Snapshot, to: Path, *, force: bool) -> list[Path]:
    """:func:`restore` for a loaded snapshot."""
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise ConfigError(f"{to} is a file, not a directory")
    if to.is_dir() and any(to.iterdir()) and not force:
        raise ConfigError(f"{to} is not empty; restore into an empty directory, or use --force")
    written = []
    for item in snapshot.inputs:
        path = (to / item["name"]).resolve()
        if not path.is_relative_to(to.resolve()):
            raise ConfigError(f"snapshot file name {item['name']!r} leaves {to}")
        data = store.get(item["sha256"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if sha256(path.read_bytes()) != item["sha256"]:
            raise ConfigError(f"{path} did not read back as written")
        written.append(path)
    return written
