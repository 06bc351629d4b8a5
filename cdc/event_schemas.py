"""JSON Schemas of every event type and version, and the compatibility rule between versions.

Schemas live in cdc/schemas/<event type>/v<version>.json. The outbox writer
validates each payload before its transaction commits, so a malformed event
fails the change that produced it instead of a consumer hours later.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


class UnknownEventType(LookupError):
    pass


class InvalidEventPayload(ValueError):
    pass


@cache
def load_schemas() -> dict[tuple[str, int], dict[str, Any]]:
    """Return {(event type, version): schema} for every file under cdc/schemas/."""
    schemas: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.glob("*/v*.json")):
        version = int(path.stem.removeprefix("v"))
        schemas[(path.parent.name, version)] = json.loads(path.read_text())
    return schemas


@cache
def _validator(event_type: str, version: int) -> Draft202012Validator:
    schema = load_schemas().get((event_type, version))
    if schema is None:
        raise UnknownEventType(f"No schema for {event_type} v{version}; add cdc/schemas/{event_type}/v{version}.json.")
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_payload(event_type: str, version: int, payload: dict[str, Any]) -> None:
    """Raise InvalidEventPayload naming the first violation, or UnknownEventType for a missing schema."""
    errors = sorted(_validator(event_type, version).iter_errors(payload), key=lambda error: list(error.path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.path) or "(payload)"
        raise InvalidEventPayload(f"{event_type} v{version} payload is invalid at {where}: {first.message}")


def _property_types(schema: dict[str, Any]) -> dict[str, Any]:
    return {name: spec.get("type", spec.get("anyOf", spec.get("const"))) for name, spec in schema.get("properties", {}).items()}


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """List the changes from `old` to `new` that would break a consumer written against `old`.

    Breaking: a removed property, a property whose type changed, and a new
    required property without a default.
    """
    problems: list[str] = []
    old_types, new_types = _property_types(old), _property_types(new)

    for name, old_type in old_types.items():
        if name not in new_types:
            problems.append(f"property {name!r} was removed")
        elif new_types[name] != old_type:
            problems.append(f"property {name!r} changed type from {old_type!r} to {new_types[name]!r}")

    old_required = set(old.get("required", []))
    for name in sorted(set(new.get("required", [])) - old_required):
        spec = new.get("properties", {}).get(name, {})
        if "default" not in spec:
            problems.append(f"property {name!r} became required without a default")
    return problems
