"""Schemathesis hooks for the gateway's run (see schemathesis.toml).

Only rules that JSON Schema cannot state are applied here; each is a rule the server keeps
on purpose and the document describes in words.
"""

import json

import schemathesis


@schemathesis.hook
def filter_body(context, body):
    """A `devices:import` batch names each device once (JSON Schema's `uniqueItems` compares
    whole objects, not one property of them)."""
    operation = getattr(context, "operation", None)
    if operation is None or not operation.path.endswith("/devices:import"):
        return True
    if not isinstance(body, dict) or not isinstance(body.get("devices"), list):
        return True
    ids = [d.get("device_id") for d in body["devices"] if isinstance(d, dict)]
    return len(ids) == len(set(map(repr, ids)))


def _empty(value):
    return value is None or (isinstance(value, dict) and all(v is None for v in value.values()))


@schemathesis.hook
def filter_case(context, case):
    """A send is also checked against the rules of every channel its targets reach, and which
    channels those are depends on the registry (devices registered earlier in the run, on any
    channel), not on the request. Positive sends are kept to what every channel takes: a
    collapse key (C2DM requires one), no notification (C2DM carries data only) and a small
    data object (C2DM's 1024 bytes). Negative sends are all kept: they must be refused anyway."""
    operation = case.operation
    if operation.method.upper() != "POST" or not operation.path.endswith("/messages"):
        return True
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    if mode is not None and str(getattr(mode, "value", mode)).lower() == "negative":
        return True
    body = case.body
    if not isinstance(body, dict):
        return True
    data = body.get("data") or {}
    return (
        isinstance(body.get("collapse_key"), str)
        and _empty(body.get("notification"))
        and len(json.dumps(data, ensure_ascii=False).encode()) <= 512
    )
