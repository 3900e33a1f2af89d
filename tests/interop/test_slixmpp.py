"""slixmpp (PyPI, 1.17) as a CCS app server against the pushgate emulator: SASL PLAIN over
direct TLS with the emulator's certificate as CA, a downstream <gcm> message and its ack, an
injected upstream message and the app server's ack, and a refused key."""

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
import slixmpp
from slixmpp import Message
from slixmpp.xmlstream import ElementBase, register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

import emulator

SENDER_ID = "1234567890"  # the emulator's default sender
API_KEY = "emulator-key"
HOST, PORT = os.environ.get("EMULATOR_XMPP", ":").rsplit(":", 1)
CA = os.environ.get("EMULATOR_CA", "")
if HOST != "127.0.0.1":
    raise RuntimeError(f"EMULATOR_XMPP must point at the local emulator, got {HOST!r}")


class Gcm(ElementBase):
    """The CCS payload element: <gcm xmlns="google:mobile:data">JSON</gcm>."""

    name = "gcm"
    namespace = "google:mobile:data"
    plugin_attrib = "gcm"
    interfaces = {"json"}

    def get_json(self):
        return self.xml.text or ""

    def set_json(self, value):
        self.xml.text = value


register_stanza_plugin(Message, Gcm)


class AppServer(slixmpp.ClientXMPP):
    """A minimal CCS app server: direct TLS, PLAIN, no presence, <gcm> messages queued."""

    def __init__(self, key):
        super().__init__(f"{SENDER_ID}@gcm.googleapis.com", key)
        self.enable_direct_tls = True
        self.enable_starttls = False
        self.enable_plaintext = False
        self.ca_certs = Path(CA)
        self.use_ipv6 = False
        self.plugin["feature_mechanisms"].use_mech = "PLAIN"
        self.started = asyncio.Event()
        self.failed = asyncio.Event()
        self.inbox = asyncio.Queue()
        self.add_event_handler("session_start", lambda _: self.started.set())
        self.add_event_handler("failed_auth", lambda _: self.failed.set())
        self.register_handler(
            Callback("gcm", StanzaPath("message/gcm"), self._on_gcm)
        )

    def _on_gcm(self, msg):
        self.inbox.put_nowait((msg["type"], json.loads(msg["gcm"]["json"])))

    def send_gcm(self, payload):
        msg = self.make_message(mto="gcm.googleapis.com", mtype=None)
        msg["id"] = ""
        msg["gcm"]["json"] = json.dumps(payload)
        msg.send()

    async def next_gcm(self):
        return await asyncio.wait_for(self.inbox.get(), 10)


@pytest.fixture(autouse=True)
def fresh_emulator():
    emulator.call("POST", "/emulator/reset")
    yield


async def wait_for_stat(key, value):
    for _ in range(200):
        if emulator.call("GET", "/emulator/stats").get(key) == value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{key} never reached {value}: {emulator.call('GET', '/emulator/stats')}")


async def app_server_round_trip():
    [token] = emulator.devices(1)
    app = AppServer(API_KEY)
    app.connect(HOST, int(PORT))
    await asyncio.wait_for(app.started.wait(), 10)

    # Downstream: exactly one ack, no type attribute, the device got the data.
    app.send_gcm({"to": token, "message_id": "slix-1", "data": {"k": "v"}})
    kind, ack = await app.next_gcm()
    assert ack == {"from": token, "message_id": "slix-1", "message_type": "ack"}
    [msg] = emulator.inbox(token)
    assert msg["via"] == "ccs" and msg["data"] == {"k": "v"}

    # Upstream: injected through the control API, delivered as type="normal", acked.
    emulator.call("POST", f"/emulator/devices/{token}/upstream",
                  {"data": {"hello": "world"}, "message_id": "up-1"})
    kind, up = await app.next_gcm()
    assert kind == "normal"
    assert up == {"category": "com.example.app", "data": {"hello": "world"},
                  "message_id": "up-1", "from": token}
    app.send_gcm({"to": token, "message_id": "up-1", "message_type": "ack"})
    await wait_for_stat("ccs_upstream_acked", 1)

    # A nack for an uninstalled device.
    emulator.call("POST", f"/emulator/devices/{token}/uninstall")
    app.send_gcm({"to": token, "message_id": "slix-2"})
    _, nack = await app.next_gcm()
    assert nack["message_type"] == "nack" and nack["error"] == "DEVICE_UNREGISTERED"
    app.disconnect()


async def refused_key():
    app = AppServer("not-the-key")
    app.connect(HOST, int(PORT))
    await asyncio.wait_for(app.failed.wait(), 10)
    assert not app.started.is_set()
    app.disconnect()


def test_app_server_over_direct_tls_with_sasl_plain():
    asyncio.run(app_server_round_trip())
    assert emulator.call("GET", "/emulator/stats")["ccs_connections_total"] == 1


def test_a_wrong_key_fails_sasl():
    asyncio.run(refused_key())
    time.sleep(0.05)
    assert emulator.call("GET", "/emulator/stats")["ccs_login_failures"] >= 1
