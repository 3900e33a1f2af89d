"""firebase-admin (PyPI) against the pushgate emulator's FCM v1 and OAuth endpoints.

The key file comes from the emulator, so its token_uri points at the emulator; the messaging
service's URLs are pointed at the emulator too. google-auth's background Regional Access
Boundary look-up (a call to a Google host after the first authorised request) is switched
off, and every socket a test opens is checked to be on 127.0.0.1.
"""

import asyncio
import json
import socket
import uuid

import pytest

import emulator

# -- no traffic may leave the machine -----------------------------------------------------
_real_getaddrinfo = socket.getaddrinfo
_refused_hosts = []


def _loopback_only(host, *args, **kwargs):
    if host not in ("127.0.0.1", "localhost", "::1"):
        _refused_hosts.append(host)
        raise OSError(f"interop tests may only reach 127.0.0.1, not {host}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only

import firebase_admin  # noqa: E402  (after the guard)
from firebase_admin import credentials, exceptions, messaging  # noqa: E402
from google.auth import credentials as google_credentials  # noqa: E402

google_credentials.CredentialsWithRegionalAccessBoundary._maybe_start_regional_access_boundary_refresh = (
    lambda self, request, url: None
)

PROJECT = "interop-project"


@pytest.fixture()
def app(tmp_path):
    emulator.call("POST", "/emulator/reset")
    key = emulator.call("POST", "/emulator/projects", {"project_id": PROJECT})
    assert key["token_uri"].startswith(emulator.BASE)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    app = firebase_admin.initialize_app(credentials.Certificate(str(path)), name=str(uuid.uuid4()))
    service = messaging._get_messaging_service(app)
    service._fcm_url = f"{emulator.BASE}/v1/projects/{PROJECT}/messages:send"
    service._fcm_topic_url = f"{emulator.BASE}/v1/projects/{PROJECT}/registrations"
    yield app
    firebase_admin.delete_app(app)
    assert _refused_hosts == [], f"a client tried to reach {_refused_hosts}"


def devices(n):
    return emulator.devices(n, project_id=PROJECT)


def test_send_one_message(app):
    [token] = devices(1)
    name = messaging.send(messaging.Message(token=token, data={"score": "850"},
                                            notification=messaging.Notification(title="t", body="b")),
                          app=app)
    assert name.startswith(f"projects/{PROJECT}/messages/")
    [msg] = emulator.inbox(token)
    assert msg["via"] == "fcm-v1"
    assert msg["data"] == {"score": "850"}
    assert emulator.call("GET", "/emulator/stats")["token_requests"] == 1


def test_send_each_and_multicast(app):
    tokens = devices(3)
    batch = messaging.send_each([messaging.Message(token=t, data={"i": str(i)})
                                 for i, t in enumerate(tokens)], app=app)
    assert batch.success_count == 3 and batch.failure_count == 0
    multi = messaging.send_each_for_multicast(messaging.MulticastMessage(tokens=tokens, data={"m": "1"}),
                                              app=app)
    assert multi.success_count == 3
    for i, t in enumerate(tokens):
        assert [m["data"] for m in emulator.inbox(t)] == [{"i": str(i)}, {"m": "1"}]


# One loop for the whole module: firebase-admin's async client outlives a single asyncio.run.
LOOP = asyncio.new_event_loop()


def test_send_each_async(app):
    tokens = devices(2)
    batch = LOOP.run_until_complete(messaging.send_each_async(
        [messaging.Message(token=t, data={"a": "b"}) for t in tokens], app=app))
    assert batch.success_count == 2
    assert all(len(emulator.inbox(t)) == 1 for t in tokens)


def test_uninstalled_device_is_unregistered(app):
    [token] = devices(1)
    emulator.call("POST", f"/emulator/devices/{token}/uninstall")
    with pytest.raises(messaging.UnregisteredError):
        messaging.send(messaging.Message(token=token, data={"a": "b"}), app=app)


def test_malformed_token_is_invalid_argument(app):
    [token] = devices(1)
    with pytest.raises(exceptions.InvalidArgumentError) as err:
        messaging.send(messaging.Message(token=token[:-4], data={"a": "b"}), app=app)
    assert "not a valid FCM registration token" in str(err.value)


def test_injected_429_is_quota_exceeded(app):
    [token] = devices(1)
    # Without Retry-After: urllib3 (under firebase-admin) retries a 429 that carries one.
    emulator.call("POST", "/emulator/faults", {"path": "/v1/", "status": 429, "count": 1})
    with pytest.raises(messaging.QuotaExceededError):
        messaging.send(messaging.Message(token=token, data={"a": "b"}), app=app)
    assert emulator.inbox(token) == []


def test_dry_run_answers_without_delivering(app):
    [token] = devices(1)
    name = messaging.send(messaging.Message(token=token, data={"a": "b"}), dry_run=True, app=app)
    assert name == f"projects/{PROJECT}/messages/fake_message_id"
    assert emulator.inbox(token) == []


def test_topic_subscription_and_topic_send(app):
    subscribed = devices(2)
    [outsider] = devices(1)
    bad = subscribed[0][:-3]
    result = messaging.subscribe_to_topic(subscribed + [bad], "news", app=app)
    assert result.success_count == 2 and result.failure_count == 1
    assert [e.index for e in result.errors] == [2]
    name = messaging.send(messaging.Message(topic="news", data={"headline": "x"}), app=app)
    assert name.startswith(f"projects/{PROJECT}/messages/")
    assert all(len(emulator.inbox(t)) == 1 for t in subscribed)
    assert emulator.inbox(outsider) == []
    result = messaging.unsubscribe_from_topic([subscribed[0]], "news", app=app)
    assert result.success_count == 1
    messaging.send(messaging.Message(topic="news", data={"headline": "y"}), app=app)
    assert len(emulator.inbox(subscribed[0])) == 1
    assert len(emulator.inbox(subscribed[1])) == 2
