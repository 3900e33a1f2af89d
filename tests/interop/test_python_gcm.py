"""python-gcm (PyPI, 0.4) against the pushgate emulator: JSON, plain text, NotRegistered,
canonical ids, topics, authentication and retries, as that library reports them."""

import gcm as gcm_module
import pytest
from gcm import GCM

import emulator

API_KEY = "emulator-key"  # the emulator's default sender


@pytest.fixture(autouse=True)
def fresh_emulator():
    emulator.call("POST", "/emulator/reset")
    yield


def client(key=API_KEY):
    g = GCM(key, timeout=10)
    g.url = emulator.BASE + "/gcm/send"
    return g


def test_json_multicast_reaches_every_device():
    tokens = emulator.devices(3)
    info = client().json_request(registration_ids=tokens, data={"score": "4x8", "n": "1"})
    assert set(info["success"]) == set(tokens)
    assert "errors" not in info and "canonical" not in info
    for t in tokens:
        [msg] = emulator.inbox(t)
        assert msg["data"] == {"score": "4x8", "n": "1"}
        assert msg["via"] == "legacy-json"
        assert msg["message_id"] == info["success"][t]


def test_plain_text_reaches_the_device():
    [token] = emulator.devices(1)
    canonical = client().plaintext_request(registration_id=token, data={"k": "v w&x"},
                                           collapse_key="c1")
    assert canonical is None
    [msg] = emulator.inbox(token)
    assert msg["via"] == "legacy-plain"
    assert msg["data"] == {"k": "v w&x"}
    assert msg["collapse_key"] == "c1"


def test_not_registered_in_both_forms():
    live, gone = emulator.devices(2)
    emulator.call("POST", f"/emulator/devices/{gone}/uninstall")
    info = client().json_request(registration_ids=[live, gone], data={"a": "b"})
    assert info["errors"] == {"NotRegistered": [gone]}
    assert list(info["success"]) == [live]
    with pytest.raises(gcm_module.gcm.GCMNotRegisteredException):
        client().plaintext_request(registration_id=gone, data={"a": "b"})


def test_never_issued_tokens_are_invalid_registration():
    [token] = emulator.devices(1)
    info = client().json_request(registration_ids=[token[:-5]], data={"a": "b"})
    assert info["errors"] == {"InvalidRegistration": [token[:-5]]}
    with pytest.raises(gcm_module.gcm.GCMInvalidRegistrationException):
        client().plaintext_request(registration_id=token[:-5], data={"a": "b"})


def test_canonical_ids_in_both_forms():
    [old] = emulator.devices(1)
    new = emulator.call("POST", f"/emulator/devices/{old}/rotate")["token"]
    assert new != old
    info = client().json_request(registration_ids=[old], data={"a": "b"})
    assert info["canonical"] == {old: new}
    assert client().plaintext_request(registration_id=old, data={"a": "b"}) == new
    # Both messages reached the one device behind the two tokens.
    assert len(emulator.inbox(new)) == 2


def test_topic_message_gets_a_numeric_id():
    message_id = client().send_topic_message(topic="news", data={"headline": "x"})
    assert isinstance(message_id, int)


def test_wrong_key_is_an_authentication_error():
    [token] = emulator.devices(1)
    with pytest.raises(gcm_module.gcm.GCMAuthenticationException):
        client("not-a-key").json_request(registration_ids=[token], data={"a": "b"})
    assert emulator.inbox(token) == []


def test_unavailable_recipient_is_retried_until_delivered():
    tokens = emulator.devices(2)
    emulator.call("POST", "/emulator/faults",
                  {"token": tokens[1], "error": "Unavailable", "count": 1})
    info = client().json_request(registration_ids=tokens, data={"a": "b"}, retries=3)
    assert set(info["success"]) == {tokens[1]}  # python-gcm keeps the last round only
    assert len(emulator.inbox(tokens[0])) == 1
    assert len(emulator.inbox(tokens[1])) == 1
