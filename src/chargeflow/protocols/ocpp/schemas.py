"""The standard's JSON schemas, shipped by the ``ocpp`` package, compiled once with jsonschema-rs.

Each (version, action, direction) is compiled on first use and kept for the life of the registry.
jsonschema-rs validates in compiled Rust: on OCPP's MeterValues and TransactionEvent it takes a tenth of
the time of fastjsonschema's generated Python, and schema validation is then no longer a visible part
of a message's cost. A failed validation is mapped to the CALLERROR kind the standard asks for.
"""

from __future__ import annotations

import json
from enum import StrEnum
from importlib import resources
from typing import Any, Final

import jsonschema_rs

from chargeflow.protocols.ocpp.frames import ErrorKind, FrameError, OcppVersion

Validator = jsonschema_rs.Validator

_SCHEMA_DIRS: Final = {OcppVersion.V16: "v16", OcppVersion.V201: "v201", OcppVersion.V21: "v21"}

# jsonschema-rs names the keyword that failed by the class of the error's ``kind``; the OCPP error that
# keyword means. Any other keyword is a FormatViolation.
_RULE_KINDS: Final = {
    "Required": ErrorKind.OCCURRENCE,
    "MinItems": ErrorKind.OCCURRENCE,
    "MaxItems": ErrorKind.OCCURRENCE,
    "Type": ErrorKind.TYPE,
    "MaxLength": ErrorKind.TYPE,
    "MinLength": ErrorKind.TYPE,
    "Format": ErrorKind.TYPE,
    "AdditionalProperties": ErrorKind.FORMAT,
    "Enum": ErrorKind.PROPERTY,
    "Minimum": ErrorKind.PROPERTY,
    "Maximum": ErrorKind.PROPERTY,
    "ExclusiveMinimum": ErrorKind.PROPERTY,
    "ExclusiveMaximum": ErrorKind.PROPERTY,
    "MultipleOf": ErrorKind.PROPERTY,
    "Pattern": ErrorKind.PROPERTY,
}


class Direction(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"


class UnknownAction(LookupError):
    """The version has no schema for this action."""


def _schema_name(version: OcppVersion, action: str, direction: Direction) -> str:
    if direction is Direction.RESPONSE:
        return f"{action}Response.json"
    return f"{action}Request.json" if version.is_v2 else f"{action}.json"


class SchemaRegistry:
    """Compiled validators, one per (version, action, direction), built on first use."""

    def __init__(self) -> None:
        self._validators: dict[tuple[OcppVersion, str, Direction], Validator] = {}
        self._actions: dict[OcppVersion, frozenset[str]] = {}

    def actions(self, version: OcppVersion) -> frozenset[str]:
        """Every action the version defines (requests in either direction)."""
        if version not in self._actions:
            folder = resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas"
            names = {entry.name for entry in folder.iterdir() if entry.name.endswith(".json")}
            suffix = "Request.json" if version.is_v2 else ".json"
            self._actions[version] = frozenset(
                name.removesuffix(suffix)
                for name in names
                if name.endswith(suffix) and not name.endswith("Response.json")
            )
        return self._actions[version]

    def validator(self, version: OcppVersion, action: str, direction: Direction) -> Validator:
        key = (version, action, direction)
        found = self._validators.get(key)
        if found is None:
            if action not in self.actions(version):
                raise UnknownAction(f"{version} has no action {action}")
            path = resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas" / _schema_name(*key)
            # The 2.0.1 schemas start with a byte-order mark.
            schema = json.loads(path.read_text(encoding="utf-8-sig"))
            schema.pop("$id", None)  # ids are URNs a validator would try to resolve
            found = jsonschema_rs.validator_for(schema, validate_formats=True)
            self._validators[key] = found
        return found

    def validate(
        self,
        version: OcppVersion,
        action: str,
        direction: Direction,
        payload: dict[str, Any],
        message_id: str,
    ) -> None:
        """Raise ``FrameError`` with the right kind when ``payload`` breaks the schema."""
        try:
            self.validator(version, action, direction).validate(payload)
        except jsonschema_rs.ValidationError as exc:
            kind = _RULE_KINDS.get(type(exc.kind).__name__, ErrorKind.FORMAT)
            where = "/".join(str(part) for part in exc.instance_path)
            raise FrameError(kind, f"{where}: {exc.message}" if where else exc.message, message_id) from None
