"""The JSON Schemas of the published events (schemas/events/), applied to what was published."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "events"


@functools.cache
def schema(event_type: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{event_type}.json").read_text())
    return loaded


def check(message: Any) -> dict[str, Any]:
    """The message's data, after checking it against its ce-type's schema (raises if it fails)."""
    data: dict[str, Any] = json.loads(message.data)
    jsonschema.validate(data, schema(message.attributes["ce-type"]), cls=jsonschema.Draft202012Validator)
    return data
