"""Small helpers for the pushgate emulator's control API, shared by the interop tests."""

import json
import os
import urllib.request

BASE = os.environ.get("EMULATOR_URL", "").rstrip("/")
if not BASE.startswith("http://127.0.0.1") and not BASE.startswith("https://127.0.0.1"):
    raise RuntimeError(f"EMULATOR_URL must point at the local emulator, got {BASE!r}")


def call(method, path, body=None):
    """Calls the control API and returns the decoded JSON answer (or None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def devices(count, **fields):
    """Creates `count` virtual devices and returns their tokens."""
    answer = call("POST", "/emulator/devices", {"count": count, **fields})
    return [d["token"] for d in answer["devices"]]


def inbox(token):
    """The messages a device received, oldest first."""
    return call("GET", f"/emulator/devices/{token}/messages")["messages"]
