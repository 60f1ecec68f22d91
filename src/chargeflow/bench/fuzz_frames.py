"""OCPP CALL payloads for fuzzing, drawn from the standard's JSON schemas with a seeded random generator.

A payload is schema-valid, or a valid one bent once the way a faulty station bends it: a required field
left out, a value of the wrong type, an unknown field, an out-of-range number, an overlong or odd string,
or no object at all. The schemas use a small part of JSON Schema (type, properties, required,
additionalProperties, items, min/maxItems, enum, maxLength, format, minimum/maximum, multipleOf and local
``$ref``); that is all this generator reads. The same seed gives the same frames, so a crash found by
``chargeflow bench fuzz`` can be replayed.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Final

Json = Any
Schema = dict[str, Any]

_SCHEMA_DIRS: Final = {"1.6": "v16", "2.0.1": "v201"}
# Strings a station may send by mistake: control characters, a NUL, an astral character, a combining
# mark, right-to-left text, markup and SQL.
ODD_STRINGS: Final = (
    "",
    "\x00",
    "\u202etxet",
    "\U0001f50c",
    "e\u0301",
    "<script>x</script>",
    "' OR 1=1 --",
    "\\",
    "%s%n",
)
EXTREME_NUMBERS: Final = (-1, 0, 2**31, 2**63, 2**64 + 1, -(2**63) - 1, 1e308, -1e308, 1e-320, 0.5)


def load_schema(version: str, action: str) -> Schema:
    """The CALL payload schema of an action in OCPP ``version`` ("1.6" or "2.0.1")."""
    suffix = ".json" if version == "1.6" else "Request.json"
    path = resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas" / f"{action}{suffix}"
    schema: Schema = json.loads(path.read_text(encoding="utf-8"))
    return schema


class PayloadGenerator:
    """Valid payloads for one schema, and slightly invalid ones, from a ``random.Random``."""

    def __init__(self, schema: Schema, rng: random.Random, now: datetime | None = None) -> None:
        self._root = schema
        self._rng = rng
        self._now = now or datetime(2026, 1, 1, tzinfo=UTC)

    def valid(self) -> Json:
        return self._value(self._root, depth=0)

    def invalid(self) -> Json:
        """A valid payload with one fault (it may still be valid: an optional field left out)."""
        return self.bend(self.valid())

    def bend(self, payload: Json) -> Json:
        """A copy of ``payload`` with one fault."""
        mutation = self._rng.choice(_MUTATIONS)
        return mutation(self, copy.deepcopy(payload))

    def payload(self, invalid_share: float = 0.5) -> tuple[Json, bool]:
        """A payload and whether it was bent."""
        if self._rng.random() < invalid_share:
            return self.invalid(), True
        return self.valid(), False

    # Valid values -----------------------------------------------------------------------------------

    def _resolve(self, node: Schema) -> Schema:
        while "$ref" in node:
            reference = node["$ref"]
            target: Any = self._root
            for part in reference.removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _value(self, node: Schema, depth: int) -> Json:
        node = self._resolve(node)
        rng = self._rng
        if "enum" in node:
            return rng.choice(node["enum"])
        kind = node.get("type", "object")
        if isinstance(kind, list):
            kind = rng.choice(kind)
        if kind == "object":
            return self._object(node, depth)
        if kind == "array":
            low = node.get("minItems", 0)
            high = min(node.get("maxItems", low + 3), low + 3)
            return [self._value(node.get("items", {}), depth + 1) for _ in range(rng.randint(low, high))]
        if kind == "string":
            return self._string(node)
        if kind == "integer":
            return rng.randint(int(node.get("minimum", 0)), int(node.get("maximum", 100_000)))
        if kind == "number":
            low, high = float(node.get("minimum", 0)), float(node.get("maximum", 100_000))
            value = rng.uniform(low, high)
            step = node.get("multipleOf")
            return round(value / step) * step if step else round(value, 1)
        if kind == "boolean":
            return rng.random() < 0.5
        return None

    def _object(self, node: Schema, depth: int) -> dict[str, Json]:
        required = set(node.get("required", ()))
        out: dict[str, Json] = {}
        for name, child in node.get("properties", {}).items():
            if name in required or (depth < 4 and self._rng.random() < 0.5):
                out[name] = self._value(child, depth + 1)
        return out

    def _string(self, node: Schema) -> str:
        rng = self._rng
        if node.get("format") == "date-time":
            moment = self._now + timedelta(seconds=rng.randint(-86_400 * 30, 86_400))
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        if node.get("format") == "uri":
            return "https://example.org/x"
        length = rng.randint(1, min(int(node.get("maxLength", 20)), 20))
        return "".join(rng.choice("ABCDEF0123456789-xyz") for _ in range(length))

    # Faults -----------------------------------------------------------------------------------------

    def _paths(self, payload: Json) -> list[tuple[Any, Any]]:
        """(container, key) of every value inside the payload."""
        found: list[tuple[Any, Any]] = []

        def walk(value: Json) -> None:
            if isinstance(value, dict):
                for key in value:
                    found.append((value, key))
                    walk(value[key])
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    found.append((value, index))
                    walk(item)

        walk(payload)
        return found

    def _drop_a_field(self, payload: Json) -> Json:
        fields = [(c, k) for c, k in self._paths(payload) if isinstance(c, dict)]
        if fields:
            container, key = self._rng.choice(fields)
            del container[key]
        return payload

    def _wrong_type(self, payload: Json) -> Json:
        paths = self._paths(payload)
        if paths:
            container, key = self._rng.choice(paths)
            container[key] = self._rng.choice([None, True, "7", 7, 7.5, [], {}, [1, "a"], {"a": None}])
        return payload

    def _unknown_field(self, payload: Json) -> Json:
        objects = [payload] + [c[k] for c, k in self._paths(payload) if isinstance(c[k], dict)]
        target = self._rng.choice([o for o in objects if isinstance(o, dict)] or [{}])
        target["unexpected" + str(self._rng.randint(0, 9))] = self._rng.choice(["x", 1, None, {"y": []}])
        return payload

    def _extreme_number(self, payload: Json) -> Json:
        numbers = [
            (c, k)
            for c, k in self._paths(payload)
            if isinstance(c[k], int | float) and not isinstance(c[k], bool)
        ]
        if numbers:
            container, key = self._rng.choice(numbers)
            container[key] = self._rng.choice(EXTREME_NUMBERS)
        return payload

    def _odd_string(self, payload: Json) -> Json:
        strings = [(c, k) for c, k in self._paths(payload) if isinstance(c[k], str)]
        if strings:
            container, key = self._rng.choice(strings)
            container[key] = self._rng.choice(
                [*ODD_STRINGS, "x" * 5000, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-13-45T99:99"]
            )
        return payload

    def _not_an_object(self, payload: Json) -> Json:
        return self._rng.choice([None, [], "payload", 0, [payload]])


_MUTATIONS: Final[tuple[Callable[[PayloadGenerator, Json], Json], ...]] = (
    PayloadGenerator._drop_a_field,
    PayloadGenerator._wrong_type,
    PayloadGenerator._unknown_field,
    PayloadGenerator._extreme_number,
    PayloadGenerator._odd_string,
    PayloadGenerator._not_an_object,
)
