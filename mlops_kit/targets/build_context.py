"""Docker build contexts for the custom and embedded server flavours, written without Docker.

From one :class:`~mlops_kit.deployment.DeploymentSpec` (flavour ``custom`` or ``embedded``,
``model_uri`` a local MLflow model directory) this writes everything ``docker build`` (or
kaniko, buildah) needs for the image the spec's ``image`` names::

    Dockerfile            MLServer on python:3.12-slim, non-root, `mlserver start`
    .dockerignore
    requirements.txt      the model's MLflow requirements, every one pinned, then MLServer
    settings.json         MLServer server settings (ports come from Seldon's environment)
    model-settings.json   the model: name, runtime, where its artifacts are
    model/                embedded only: the MLflow model directory, copied in
    src/                  when asked: the user's code for a custom runtime class

``custom`` is a reusable server: one image serves every version of the model family, whose
artifacts Seldon's storage initializer downloads to ``/mnt/models`` from ``modelUri``.
``embedded`` carries one version inside the image (no ``modelUri`` in the SeldonDeployment).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops_kit import artifacts
from mlops_kit.errors import ConfigError

if TYPE_CHECKING:
    from mlops_kit.deployment import DeploymentSpec
    from mlops_kit.project import Project

FLAVOURS = ("custom", "embedded")
DEFAULT_BASE_IMAGE = "python:3.12-slim"
MLFLOW_RUNTIME = "mlserver_mlflow.MLflowRuntime"
SERVER_DIR = "/opt/mlserver"
MOUNTED_MODEL = "/mnt/models"
"""Where Seldon Core's storage initializer puts the artifacts of ``modelUri``."""
MARKER = ".mlops-kit-build"
"""Marks a directory this module wrote, so rewriting it may delete it first."""
SERVER_REQUIREMENTS = ("mlserver", "mlserver-mlflow")
COPY_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv", ".mlops")
"""What copying a directory into a build context leaves out."""


@dataclass(frozen=True)
class BuildContext:
    """A written build context."""

    path: Path
    flavour: str
    model_name: str
    version: str | None
    """The version baked in (embedded); None for a reusable server."""
    image: str | None
    requirements: tuple[str, ...]
    """The pinned requirement lines, in file order."""
    files: tuple[str, ...]
    """Every file of the context, relative to ``path``, sorted."""

    def build_command(self) -> list[str]:
        """``docker build -t <image> <path>`` (the toolkit never runs it)."""
        return ["docker", "build", "-t", self.image or f"{self.model_name}:latest", str(self.path)]


def write_build_context(
    spec: DeploymentSpec,
    dest: str | Path,
    *,
    source_dir: str | Path | None = None,
    base_image: str = DEFAULT_BASE_IMAGE,
    runtime: str | None = None,
) -> BuildContext:
    """Write the build context of ``spec``'s server image into ``dest``; returns what it wrote.

    ``runtime`` is the MLServer implementation (default: ``spec.custom_class`` as
    ``module.Class``, else MLServer's MLflow runtime); ``source_dir`` is copied to ``src/``
    and put on ``PYTHONPATH``, for a custom class that lives in the user's repository.
    """
    if spec.flavour not in FLAVOURS:
        raise ConfigError(
            f"build contexts are for the {' and '.join(FLAVOURS)} flavours; {spec.model_name} "
            f"uses {spec.flavour!r}, a prepackaged Seldon server that needs no image"
        )
    model_dir = model_dir_of(spec.model_uri)
    source = Path(source_dir).expanduser().resolve() if source_dir is not None else None
    if source is not None and not source.is_dir():
        raise ConfigError(f"source_dir {source} is not a directory")
    path = fresh_context(Path(dest))
    embedded = spec.flavour == "embedded"
    implementation = runtime or _implementation(spec.custom_class)
    requirements = pinned_requirements(model_dir)
    (path / "requirements.txt").write_text(_requirements_text(spec, requirements))
    _write_json(path / "settings.json", {"debug": False, "parallel_workers": 0})
    parameters: dict[str, Any] = {"uri": "./model" if embedded else MOUNTED_MODEL}
    if embedded:
        parameters["version"] = spec.version
    _write_json(
        path / "model-settings.json",
        {"name": spec.model_name, "implementation": implementation, "parameters": parameters},
    )
    if embedded:
        shutil.copytree(model_dir, path / "model", ignore=COPY_IGNORED)
    if source is not None:
        shutil.copytree(source, path / "src", ignore=COPY_IGNORED)
    (path / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n.git\n" + MARKER + "\n")
    (path / "Dockerfile").write_text(
        _dockerfile(spec, base_image, implementation, embedded, source is not None)
    )
    (path / MARKER).write_text("written by mlops-kit; rewritten on the next build\n")
    files = sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.name != MARKER
    )
    return BuildContext(
        path=path,
        flavour=spec.flavour,
        model_name=spec.model_name,
        version=spec.version if embedded else None,
        image=spec.image,
        requirements=tuple(line.split("#")[0].strip() for line in requirements),
        files=tuple(files),
    )


def for_version(
    project: Project,
    version: str | int,
    flavour: str,
    *,
    dest: str | Path | None = None,
    image: str | None = None,
    **options: Any,
) -> BuildContext:
    """The build context of a registered version, under ``<state_dir>/build/`` by default."""
    from mlops_kit.gitops.deploy import spec_for

    environment = project.settings.environments[0].name
    spec = spec_for(project, environment, version)
    spec = spec.model_validate({**spec.model_dump(), "flavour": flavour, "image": image})
    if artifacts.is_remote(spec.model_uri):  # the context copies the model: from a local copy
        local = artifacts.download(spec.model_uri, artifacts.cache_dir(project.state_dir))
        spec = spec.model_copy(update={"model_uri": str(local)})
    target = dest or project.state_dir / "build" / f"{spec.model_name}-{spec.version}-{flavour}"
    return write_build_context(spec, target, **options)


def pinned_requirements(
    model_dir: Path, server: Sequence[str] = SERVER_REQUIREMENTS, why: str = "the model server"
) -> list[str]:
    """The model's ``requirements.txt`` with every requirement pinned (``name==version``).

    A pin the model has is kept as it is. An unpinned one gets the version the MLmodel file
    records (``sklearn_version``), else the version installed here, where the model was
    logged; each such line says so in a comment. The ``server`` packages the model does not
    list follow, pinned to their installed versions (commented ``why``).
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    source = model_dir / "requirements.txt"
    if not source.is_file():
        raise ConfigError(f"{model_dir} has no requirements.txt (is it an MLflow model?)")
    recorded = _recorded_versions(model_dir)
    lines: list[str] = []
    seen: set[str] = set()
    for raw in source.read_text().splitlines():
        text = raw.split(" #")[0].strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("-"):
            raise ConfigError(
                f"{source}: {text!r} cannot be resolved inside a build context; list the "
                "packages themselves"
            )
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise ConfigError(f"{source}: {exc}") from None
        name = canonicalize_name(requirement.name)
        seen.add(name)
        if _is_pinned(requirement):
            lines.append(text)
            continue
        version, origin = recorded.get(name, (None, ""))
        if version is None:
            version, origin = _installed(requirement.name), "the version installed here"
        if version is None:
            raise ConfigError(
                f"{source}: {text!r} is not pinned and not installed here; pin it in the "
                "model's pip_requirements"
            )
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        marker = f"; {requirement.marker}" if requirement.marker else ""
        lines.append(f"{requirement.name}{extras}=={version}{marker}  # pinned from {origin}")
    if _serialization(model_dir) == "skops" and "skops" not in seen:
        # MLflow loads a skops-saved model with skops, which the model does not list.
        lines.append(pin_installed("skops", "the model is saved with skops"))
        seen.add("skops")
    for package in server:
        if canonicalize_name(package) not in seen:
            lines.append(pin_installed(package, why))
            seen.add(canonicalize_name(package))
    return lines


def _is_pinned(requirement: Any) -> bool:
    specs = list(requirement.specifier)
    return len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pin_installed(name: str, why: str) -> str:
    """``name==<installed version>  # why``; ConfigError when it is not installed here."""
    version = _installed(name)
    if version is None:
        raise ConfigError(f"{name} is not installed here, so its version cannot be pinned")
    return f"{name}=={version}  # {why}"


def _mlmodel(model_dir: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((model_dir / "MLmodel").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {model_dir / 'MLmodel'}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _recorded_versions(model_dir: Path) -> dict[str, tuple[str, str]]:
    flavors = _mlmodel(model_dir).get("flavors") or {}
    found: dict[str, tuple[str, str]] = {}
    sklearn = flavors.get("sklearn") or {}
    if sklearn.get("sklearn_version"):
        found["scikit-learn"] = (str(sklearn["sklearn_version"]), "MLmodel (sklearn_version)")
    return found


def _serialization(model_dir: Path) -> str | None:
    flavors = _mlmodel(model_dir).get("flavors") or {}
    return (flavors.get("sklearn") or {}).get("serialization_format")


def model_dir_of(uri: str) -> Path:
    """The local MLflow model directory ``uri`` names (a path or ``file:`` URI), checked."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise ConfigError(
            f"a build context needs the model on local disk, not {uri}; download it first "
            "(Registry.local_path)"
        )
    else:
        path = Path(uri).expanduser()
    path = path.resolve()
    if not (path / "MLmodel").is_file():
        raise ConfigError(f"{path} is not an MLflow model directory (it has no MLmodel file)")
    return path


def fresh_context(path: Path) -> Path:
    """``path`` made empty: created, or emptied if this module (or a sibling) wrote it before.

    A directory with content that carries no :data:`MARKER` is refused, never deleted.
    """
    path = path.expanduser().resolve()
    if path.exists():
        if not (path / MARKER).exists() and any(path.iterdir()):
            raise ConfigError(f"{path} exists and was not written by mlops-kit; choose another")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _implementation(custom_class: str | None) -> str:
    if not custom_class:
        return MLFLOW_RUNTIME
    module, sep, attr = custom_class.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"custom_class {custom_class!r} must read 'module:Class'")
    return f"{module}.{attr}"


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _requirements_text(spec: DeploymentSpec, lines: list[str]) -> str:
    header = (
        f"# Generated by mlops-kit for {spec.model_name} version {spec.version} ({spec.flavour} "
        "server):\n# the model's MLflow requirements, every one pinned, then the model server.\n"
    )
    return header + "\n".join(lines) + "\n"


def _dockerfile(
    spec: DeploymentSpec, base_image: str, implementation: str, embedded: bool, source: bool
) -> str:
    kind = "server with the model embedded" if embedded else "reusable server"
    tag = spec.image or f"{spec.model_name}:latest"
    lines = [
        f"# Generated by mlops-kit: custom {kind} for {spec.model_name}"
        + (f" version {spec.version}" if embedded else "")
        + f" ({implementation}).",
        f"# Build it with: docker build -t {tag} .",
        f"FROM {base_image}",
        "ENV PYTHONDONTWRITEBYTECODE=1 \\",
        "    PYTHONUNBUFFERED=1 \\",
        "    PIP_NO_CACHE_DIR=1 \\",
        "    PIP_DISABLE_PIP_VERSION_CHECK=1",
        f"WORKDIR {SERVER_DIR}",
        "COPY requirements.txt ./",
        "RUN pip install --requirement requirements.txt",
        "COPY settings.json model-settings.json ./",
    ]
    if source:
        lines += ["COPY src/ ./src/", f"ENV PYTHONPATH={SERVER_DIR}/src"]
    if embedded:
        lines.append("COPY model/ ./model/")
    else:
        lines.append(f"# Seldon Core downloads modelUri to {MOUNTED_MODEL} when the pod starts.")
    lines += [
        "# MLflow 3 loads pickled and skops models only from a trusted source: this image",
        "# serves the project's own registered model.",
        "ENV MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true",
        f"RUN useradd --uid 1000 --no-create-home --home-dir {SERVER_DIR} mlserver",
        "USER 1000",
        "EXPOSE 8080 8081 8082",
        f'CMD ["mlserver", "start", "{SERVER_DIR}"]',
    ]
    return "\n".join(lines) + "\n"


__all__ = [
    "COPY_IGNORED",
    "DEFAULT_BASE_IMAGE",
    "FLAVOURS",
    "MARKER",
    "BuildContext",
    "for_version",
    "fresh_context",
    "model_dir_of",
    "pin_installed",
    "pinned_requirements",
    "write_build_context",
]
