"""CI pipelines for a model repository: GitHub Actions, GitLab CI and Jenkins, from templates.

Each pipeline checks out the repository, creates a virtual environment with Python 3.12,
installs mlops-kit, runs the repository's tests, executes the pipeline notebooks headless
(``mlops-kit run``) and keeps ``build/notebooks/`` as the build's artifacts. The templates live
in ``mlops_kit/templates/ci/`` and use ``@@{name}`` placeholders, because ``$`` belongs to the
shell, to GitHub expressions and to Groovy.

Secrets never become notebook parameters (papermill stores parameters in the executed
notebook, which is kept as an artifact): the pipelines pass them through the environment.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mlops_kit.errors import ConfigError, ParameterError
from mlops_kit.settings import Settings

OUTPUT_DIR = Settings.model_fields["reports_dir"].get_default().as_posix()
"""Where the pipelines have ``mlops-kit run`` write executed notebooks and HTML, and keep it."""


@dataclass(frozen=True)
class Provider:
    """A CI service: the template it is rendered from and where it goes in the repository."""

    name: str
    template: str
    destination: str


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("github", "github.yml", ".github/workflows/mlops.yml"),
        Provider("gitlab", "gitlab-ci.yml", ".gitlab-ci.yml"),
        Provider("jenkins", "Jenkinsfile", "Jenkinsfile"),
    )
}

_PYTHON = re.compile(r"3\.\d+(\.\d+)?")
_EXTRA = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_NOTEBOOK = re.compile(r"[\w./-]+")
_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
    r"(?:\s*\[(?P<extras>[^\]]*)\])?(?P<rest>(?:\s*[=<>!~;@].*)?)"
)
# Characters that would need quoting in YAML, Groovy or GitHub expressions, not just the shell.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f'\"`\\]|\$\{\{")


class Template(string.Template):
    """A template with ``@@{name}`` placeholders (``$`` belongs to shells and CI syntax)."""

    delimiter = "@@"


def get_provider(name: str) -> Provider:
    """The provider called ``name`` (any case); ConfigError listing the known ones otherwise."""
    provider = PROVIDERS.get(name.strip().lower())
    if provider is None:
        raise ConfigError(f"unknown CI provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    return provider


def toolkit_requirement(spec: str, extras: Sequence[str] = ()) -> str:
    """What ``pip install`` gets for ``spec`` with ``extras``.

    A requirement (``mlops-kit``, ``mlops-kit==0.1.0``, ``mlops-kit @ git+https://…``) gets
    the extras after its name; a bare URL becomes ``mlops-kit[extras] @ URL``; anything else
    is a local path (directory, wheel, sdist) and gets ``[extras]`` appended, as pip accepts.
    """
    spec = safe("toolkit_spec", spec.strip())
    if spec.startswith("~"):
        raise ParameterError("toolkit_spec", "use a path relative to the repository, not ~")
    extras = [_extra(e) for e in extras]
    looks_like_path = spec.startswith((".", "/")) or spec.endswith((".whl", ".tar.gz", ".zip"))
    match = None if looks_like_path else _REQUIREMENT.fullmatch(spec)
    if match:
        given = [e.strip() for e in (match["extras"] or "").split(",") if e.strip()]
        merged = list(dict.fromkeys([*given, *extras]))
        suffix = f"[{','.join(merged)}]" if merged else ""
        return f"{match['name']}{suffix}{match['rest']}"
    suffix = f"[{','.join(extras)}]" if extras else ""
    if "://" in spec:
        return f"mlops-kit{suffix} @ {spec}"
    return f"{spec}{suffix}"


TARGET_EXTRAS = {"kubernetes": "kubernetes", "sagemaker": "sagemaker"}
"""The toolkit extra a deployment target needs installed."""

_CREDENTIALS = """\
        // Credentials for the registry, the GitOps remote or the cloud go here, e.g.
        // AWS_ACCESS_KEY_ID = credentials('aws-access-key-id')
        // AWS_SECRET_ACCESS_KEY = credentials('aws-secret-access-key')"""
_JENKINS_ENVIRONMENT = {
    "sagemaker": """\
        // The SageMaker target: AWS credentials bound from Jenkins credentials; the region is
        // sagemaker.region in the project file (or add AWS_DEFAULT_REGION here).
        AWS_ACCESS_KEY_ID = credentials('aws-access-key-id')
        AWS_SECRET_ACCESS_KEY = credentials('aws-secret-access-key')
        // The bring-your-own image BuildPushContainer pushes and SageMaker runs: your ECR
        // repository (it overrides sagemaker.image_uri of the project file).
        MLOPS_KIT_SAGEMAKER__IMAGE_URI = '123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-kit-byo:latest'""",  # noqa: E501 - one Groovy line
}


def _jenkins_stage(name: str, *commands: str, extra: str = "") -> str:
    lines = "\n".join(f"                    {c}" for c in (". .venv/bin/activate", *commands))
    return (f"        stage('{name}') {{\n{extra}            steps {{\n                sh '''\n"
            f"{lines}\n                '''\n            }}\n        }}")  # fmt: skip


def jenkins_stages(config: str, notebooks: Sequence[str], target: str | None) -> str:
    """The Jenkinsfile's pipeline stages: one running the notebooks, or for SageMaker the
    seed pipeline's stages (BuildPushContainer, TrainModel … DeployToProd), each naming what
    runs it. Production still moves only through an approved, verified promotion: the
    DeployToProd stage waits for a person in Jenkins and passes their name to notebook 03."""
    if target != "sagemaker":
        return _jenkins_stage("Pipeline", shlex.join(pipeline_command(config, notebooks, target)))
    run = pipeline_command(config, (), target)
    build = [
        "mlops-kit --config " + shlex.quote(config) + " build-context --flavour sagemaker "
        '--image "$MLOPS_KIT_SAGEMAKER__IMAGE_URI" --output build/sagemaker-image',
        'docker build -t "$MLOPS_KIT_SAGEMAKER__IMAGE_URI" build/sagemaker-image',
        "aws ecr get-login-password | docker login --username AWS --password-stdin "
        '"${MLOPS_KIT_SAGEMAKER__IMAGE_URI%%/*}"',
        'docker push "$MLOPS_KIT_SAGEMAKER__IMAGE_URI"',
    ]
    approval = ("            // A person approves here; identity: ci with ci_identity_variable: "
                "APPROVER\n            // makes Jenkins' submitter the approver of record.\n"
                "            input {\n                message 'Promote to production?'\n"
                "                submitterParameter 'APPROVER'\n            }\n")  # fmt: skip
    return "\n\n".join([
        _jenkins_stage("BuildPushContainer", *build),
        _jenkins_stage("Setup", shlex.join([*run, "01"])),
        # Notebook 02 is one run: the training job and its status, staging's endpoint, the
        # smoke test over InvokeEndpoint, the promotion request.
        _jenkins_stage("TrainModel · TrainStatus · DeployToTest · SmokeTest",
                       shlex.join([*run, "02"])),
        _jenkins_stage("DeployToProd", shlex.join([*run, "-p", "approve=true", "03"])
                       + ' -p approver="$APPROVER"', extra=approval),
    ])  # fmt: skip


def pipeline_command(
    config: str, notebooks: Sequence[str] = (), target: str | None = None
) -> list[str]:
    """The ``mlops-kit`` argv that runs ``notebooks`` (all when empty) headless for CI.

    ``target`` deploys every environment through that target (``-p target=<name>``).
    """
    names = [_notebook(n) for n in notebooks]
    chosen = ["-p", f"target={_target(target)}"] if target else []
    return [
        "mlops-kit",
        "--config",
        safe("config", config),
        "run",
        "--quiet",
        "--output-dir",
        OUTPUT_DIR,
        *chosen,
        *names,
    ]


def render_ci(
    provider: str,
    *,
    python: str = "3.12",
    notebooks: Sequence[str] | str = ("01", "02"),
    config: str = "mlops.yaml",
    extras: Sequence[str] | str = ("load",),
    toolkit_spec: str = "mlops-kit",
    target: str | None = None,
) -> dict[str, str]:
    """The CI files for ``provider``: path relative to the repository root → content.

    ``notebooks`` and ``extras`` may be given as one comma- or space-separated string.
    ``target`` runs the notebooks with ``target=<name>``, installs the target's extra and, in
    a Jenkinsfile, binds the target's credentials (SageMaker: AWS keys from Jenkins).
    Raises ConfigError for an unknown provider and ParameterError for a value that cannot
    be written safely into a pipeline.
    """
    chosen = get_provider(provider)
    if not _PYTHON.fullmatch(python):
        raise ParameterError("python", f"expected a version such as 3.12, got {python!r}")
    if not config.strip():
        raise ParameterError("config", "must not be empty")
    wanted = _split(extras)
    if target and TARGET_EXTRAS.get(target) and TARGET_EXTRAS[target] not in wanted:
        wanted.append(TARGET_EXTRAS[target])
    values = {
        "python": python,
        "python_command": "python" + ".".join(python.split(".")[:2]),
        "requirement": shlex.quote(toolkit_requirement(toolkit_spec, wanted)),
        "pipeline_command": shlex.join(pipeline_command(config, _split(notebooks), target)),
        "pipeline_stages": jenkins_stages(config, _split(notebooks), target),
        "target_environment": _JENKINS_ENVIRONMENT.get(target or "", _CREDENTIALS),
        "output_dir": OUTPUT_DIR,
        "destination": chosen.destination,
    }
    source = resources.files("mlops_kit") / "templates" / "ci" / chosen.template
    text = Template(source.read_text(encoding="utf-8")).substitute(values)
    return {chosen.destination: text}


def write_ci(
    provider: str,
    repo_dir: Path,
    *,
    force: bool = False,
    **options: Any,
) -> list[Path]:
    """Write ``provider``'s CI files into the repository at ``repo_dir``; return their paths.

    ``options`` are :func:`render_ci`'s (python, notebooks, config, extras, toolkit_spec,
    target). Nothing is written when a file exists and ``force`` is false: ConfigError names it.
    """
    return write_files(Path(repo_dir), render_ci(provider, **options), force=force)


def write_files(repo_dir: Path, rendered: dict[str, str], *, force: bool = False) -> list[Path]:
    """Write ``rendered`` (path relative to the repository → text) under ``repo_dir``.

    Nothing is written when a file exists and ``force`` is false: ConfigError names it.
    """
    repo = Path(repo_dir)
    if not repo.is_dir():
        raise ConfigError(f"{repo} is not a directory")
    files = {repo / relative: text for relative, text in rendered.items()}
    if not force:
        for path in files:
            if path.exists():
                raise ConfigError(f"{path} already exists; use --force to overwrite")
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return list(files)


def _split(value: Sequence[str] | str) -> list[str]:
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def safe(name: str, value: str) -> str:
    """``value``, unless it needs quoting in YAML, Groovy or a GitHub expression."""
    if not value:
        raise ParameterError(name, "must not be empty")
    if _UNSAFE.search(value):
        raise ParameterError(
            name, f"{value!r} holds a quote, backslash, control character or '${{{{'"
        )
    return value


def _extra(value: str) -> str:
    if not _EXTRA.fullmatch(value):
        raise ParameterError("extras", f"{value!r} is not an extra's name")
    return value


def _target(value: str | None) -> str:
    from mlops_kit.targets.setup import check_target

    if value is None or not _EXTRA.fullmatch(value):
        raise ParameterError("target", f"{value!r} is not a target's name")
    return check_target(value)


def _notebook(value: str) -> str:
    if not _NOTEBOOK.fullmatch(value) or value.startswith("-"):
        raise ParameterError("notebooks", f"{value!r} is not a notebook name, prefix or path")
    return value
