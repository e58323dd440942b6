"""The configuration reference, ``docs/configuration.md``, rendered from the settings' schema.

``python -m mlops_kit.settings_docs [PATH]`` (``make docs``) writes it. Every field comes from
``Settings.model_json_schema()``: its key as written in ``mlops.yaml``, type, default, the
``MLOPS_KIT_*`` variable that sets it and its docstring. The output depends on nothing but the
settings classes, so a test can compare it with the committed file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, NoDefault

from mlops_kit.settings import ENV_PREFIX, NAME_PATTERN, Settings

DOCS_PATH = Path("docs/configuration.md")

PREAMBLE = """\
# Configuration

<!-- Generated from mlops_kit/settings.py by `make docs`; edit the field docstrings there. -->

mlops-kit reads one project file, the file named by `--config` / `MLOPS_KIT_CONFIG`, else the
nearest `mlops.yaml` in the working directory or a directory above it (as git finds `.git`),
then `MLOPS_KIT_*` environment variables, which win. Nested fields use `__`:
`MLOPS_KIT_GATES__MIN_VALUE=0.9`; a whole section or list may also be given as JSON, e.g.
`MLOPS_KIT_ENVIRONMENTS='[{"name": "staging", "kind": "staging"}]'`. The demo's `mlops.yaml` at
the repository's root is a complete example; `mlops-kit init` writes a commented one.

A bad value stops loading with one line naming the field, e.g.
`invalid settings in mlops.yaml: gates.min_value: Input should be less than or equal to 1 (got 2)`.

Notebook parameters never carry secrets: papermill stores every parameter twice in the executed
notebook. Credentials come from the environment (AWS, kubeconfig, git credentials).

The project file's directory is the project's root: relative paths in the file (`state_dir`,
`reports_dir`, `serving.custom_code_dir`, a local `gitops.remote`, …) and the default paths are
relative to it, whatever directory a command or a notebook's kernel runs in; relative paths in
`MLOPS_KIT_*` variables are relative to the working directory. Paths may start with `~`.
Commands that change an environment (deploy, sync, follow, request, approve, reject, rollback,
setup) refuse to run without a project file: the built-in defaults name no approvers.
"""

_HEADER = "| key | type | default | environment variable | description |\n|---|---|---|---|---|"


@dataclass
class Section:
    """One table of the reference: the fields of one settings model at ``key``."""

    key: str
    description: str
    rows: list[tuple[str, ...]] = field(default_factory=list)


class _FactoryDefaults(GenerateJsonSchema):
    # Sections and lists have default factories, which the schema leaves out by default.
    def get_default_value(self, schema: Any) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()
        return super().get_default_value(schema)


def settings_schema() -> dict[str, Any]:
    """The JSON schema of ``Settings``, with the defaults of sections and lists filled in."""
    return Settings.model_json_schema(schema_generator=_FactoryDefaults)


def sections(schema: dict[str, Any] | None = None) -> list[Section]:
    """The top-level fields, then each nested model's fields, in declaration order."""
    schema = schema or settings_schema()
    found: list[Section] = []
    _walk(schema, schema.get("$defs", {}), "", True, found, schema.get("description", ""))
    return found


def render(schema: dict[str, Any] | None = None) -> str:
    """The whole of ``docs/configuration.md``."""
    parts = [PREAMBLE.rstrip()]
    for section in sections(schema):
        title = f"`{section.key}`" if section.key else "Top level"
        parts.append(f"## {title}\n\n{_text(section.description)}\n\n{_HEADER}")
        parts[-1] += "".join("\n| " + " | ".join(row) + " |" for row in section.rows)
    return "\n\n".join(parts) + "\n"


def write(path: str | Path = DOCS_PATH) -> Path:
    """Render the reference into ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlops_kit.settings_docs [PATH]``: write the reference (default: docs/)."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(f"wrote {write(*args[:1])}\n")
    return 0


def _walk(
    model: dict[str, Any],
    defs: dict[str, Any],
    prefix: str,
    env: bool,
    found: list[Section],
    description: str,
) -> None:
    section = Section(prefix, description)
    found.append(section)
    nested: list[tuple[dict[str, Any], str, bool]] = []
    for name, prop in model.get("properties", {}).items():
        key = f"{prefix}.{name}" if prefix else name
        variable = f"`{ENV_PREFIX}{key.replace('.', '__').upper()}`" if env else "—"
        sub = _model_of(prop, defs)
        if sub is not None:
            in_list = prop.get("type") == "array"
            nested.append((sub, key + "[]" if in_list else key, env and not in_list))
            what = f"list of [`{key}[]`]" if in_list else f"section [`{key}`]"
            anchor = _anchor(key + "[]" if in_list else key)
            kind = f"{what}(#{anchor})"
            variable += " (JSON)" if env else ""
            default = _default(_trim(prop["default"], sub, defs)) if in_list else "see below"
            if prop.get("default", NoDefault) is None:  # an optional section, unset
                default = "`null` (see below)"
        else:
            kind, default = _type(prop, defs), _default(prop.get("default", NoDefault))
        section.rows.append((f"`{key}`", kind, default, variable, _text(prop["description"])))
    for sub, key, sub_env in nested:
        _walk(sub, defs, key, sub_env, found, sub.get("description", ""))


def _model_of(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    optional = [o["$ref"] for o in prop.get("anyOf", []) if "$ref" in o]  # section | None
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref") or next(iter(optional), None)
    if not ref:
        return None
    target = defs[ref.rsplit("/", 1)[-1]]
    return target if target.get("type") == "object" else None


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    options = prop.get("anyOf")
    if options:
        inner = [o for o in options if o.get("type") != "null"]
        text = " or ".join(_type(o, defs) for o in inner)
        return text + " or null" if len(inner) < len(options) else text
    if "$ref" in prop:
        return _type(defs[prop["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return "list of " + _type(prop.get("items", {}), defs)
    if kind == "string" and prop.get("format") == "path":
        kind = "path"
    if prop.get("pattern") == NAME_PATTERN:
        return "name (lowercase DNS label)"
    limits = [
        f"{sign} {prop[bound]}"
        for bound, sign in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
        )
        if bound in prop
    ]
    if "pattern" in prop:
        limits.append(f"matching `{prop['pattern']}`")
    return kind + (f" ({', '.join(limits)})" if limits else "")


def _trim(value: Any, model: dict[str, Any], defs: dict[str, Any]) -> Any:
    # A list default shows only what differs from each item's own defaults.
    if isinstance(value, list):
        return [_trim(v, model, defs) for v in value]
    if not isinstance(value, dict):
        return value
    props = model.get("properties", {})
    kept = {}
    for key, item in value.items():
        prop = props.get(key, {})
        if item == prop.get("default", NoDefault):
            continue
        sub = _model_of(prop, defs)
        kept[key] = _trim(item, sub, defs) if sub is not None else item
    return kept


def _default(value: Any) -> str:
    if value is NoDefault:
        return "required"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value, ensure_ascii=False)}`".replace("|", "\\|")


def _text(text: str) -> str:
    # One table cell: docstring paragraphs joined, reST literals as Markdown code.
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|")


def _anchor(key: str) -> str:
    return "".join(c for c in key.lower() if c.isalnum() or c in "-_")


if __name__ == "__main__":
    sys.exit(main())
