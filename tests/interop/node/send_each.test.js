// firebase-admin for Node: its HTTP/2 batch path (sendEach, sendEachForMulticast), which
// sends `:scheme: https:`, against the pushgate emulator's HTTPS listener.
//
// Run by crates/pushgate/tests/interop_node.rs with EMULATOR_URL (plain HTTP, control API
// and OAuth), EMULATOR_HTTPS (the HTTPS listener) and EMULATOR_CA (its certificate).
// firebase-admin has no setting for the FCM host (fcm.googleapis.com is a constant), so
// http2.connect is wrapped to send that host to the emulator instead; every other host is
// refused, and so is every socket (HTTP, TLS, fetch, metadata server) to a host other than
// 127.0.0.1 and every DNS look-up of another name: nothing leaves the machine.

'use strict';

const assert = require('node:assert');
const crypto = require('node:crypto');
const dns = require('node:dns');
const fs = require('node:fs');
const http2 = require('node:http2');
const net = require('node:net');
const test = require('node:test');

const BASE = (process.env.EMULATOR_URL || '').replace(/\/$/, '');
const HTTPS = (process.env.EMULATOR_HTTPS || '').replace(/\/$/, '');
const CA = process.env.EMULATOR_CA ? fs.readFileSync(process.env.EMULATOR_CA) : null;
assert.match(BASE, /^http:\/\/127\.0\.0\.1:\d+$/, 'EMULATOR_URL must be the local emulator');
assert.match(HTTPS, /^https:\/\/127\.0\.0\.1:\d+$/, 'EMULATOR_HTTPS must be the local emulator');
assert.ok(CA, 'EMULATOR_CA must name the emulator certificate');

// -- no traffic may leave the machine ---------------------------------------------------
const refused = [];
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const realLookup = dns.lookup;
dns.lookup = function lookup(host, ...rest) {
  if (!LOOPBACK.has(host)) {
    refused.push(host);
    const callback = rest[rest.length - 1];
    process.nextTick(callback, new Error(`interop tests may only reach 127.0.0.1, not ${host}`));
    return undefined;
  }
  return realLookup.call(this, host, ...rest);
};
const realSocketConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(...args) {
  // Node passes its own normalised [options, callback] array internally.
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options = typeof first === 'object' && first !== null ? first : { port: first, host: args[1] };
  const host = typeof options.host === 'string' ? options.host : 'localhost';
  if (!options.path && !LOOPBACK.has(host)) {
    refused.push(host);
    process.nextTick(() => this.destroy(new Error(`interop tests may only reach 127.0.0.1, not ${host}`)));
    return this;
  }
  return realSocketConnect.apply(this, args);
};
const http2Sessions = [];
const realConnect = http2.connect;
http2.connect = function connect(authority, options, listener) {
  const url = new URL(authority);
  if (url.hostname !== 'fcm.googleapis.com') {
    refused.push(url.hostname);
    throw new Error(`interop tests may only reach the emulator, not ${url.hostname}`);
  }
  http2Sessions.push(url.href);
  return realConnect.call(this, HTTPS, { ...options, ca: CA }, listener);
};

const { initializeApp, deleteApp } = require('firebase-admin/app');
const { getMessaging } = require('firebase-admin/messaging');

const PROJECT = 'interop-node';

async function call(method, path, body) {
  const response = await fetch(BASE + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status}`);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function devices(count) {
  const answer = await call('POST', '/emulator/devices', { count, project_id: PROJECT });
  return answer.devices.map((d) => d.token);
}

async function inbox(token) {
  return (await call('GET', `/emulator/devices/${token}/messages`)).messages;
}

function base64url(data) {
  return Buffer.from(data).toString('base64url');
}

// A credential that runs the service-account JWT flow against the emulator's token
// endpoint (firebase-admin's Credential interface: getAccessToken only).
function emulatorCredential(key) {
  return {
    async getAccessToken() {
      const now = Math.floor(Date.now() / 1000);
      const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: key.private_key_id }));
      const claims = base64url(JSON.stringify({
        iss: key.client_email,
        scope: 'https://www.googleapis.com/auth/firebase.messaging',
        aud: key.token_uri,
        iat: now,
        exp: now + 3600,
      }));
      const signature = crypto.sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), key.private_key);
      const response = await fetch(key.token_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
          assertion: `${header}.${claims}.${base64url(signature)}`,
        }),
      });
      assert.ok(response.ok, `token endpoint: ${response.status}`);
      return response.json();
    },
  };
}

let app;

test.before(async () => {
  await call('POST', '/emulator/reset');
  const key = await call('POST', '/emulator/projects', { project_id: PROJECT });
  assert.ok(key.token_uri.startsWith(BASE), key.token_uri);
  app = initializeApp({ credential: emulatorCredential(key), projectId: PROJECT }, `interop-${Date.now()}`);
});

test.after(async () => {
  await deleteApp(app);
  assert.deepStrictEqual(refused, [], `a client tried to reach ${refused}`);
});

test('sendEach over HTTP/2 delivers and reports each message', async () => {
  const tokens = await devices(3);
  const uninstalled = tokens[2];
  await call('POST', `/emulator/devices/${uninstalled}/uninstall`);
  const before = http2Sessions.length;
  const batch = await getMessaging(app).sendEach(
    tokens.map((token, i) => ({ token, data: { i: String(i) } })),
  );
  assert.ok(http2Sessions.length > before, 'sendEach used its HTTP/2 session');
  assert.strictEqual(batch.successCount, 2, JSON.stringify(batch));
  assert.strictEqual(batch.failureCount, 1);
  for (const i of [0, 1]) {
    const response = batch.responses[i];
    assert.ok(response.success, JSON.stringify(response));
    assert.match(response.messageId, new RegExp(`^projects/${PROJECT}/messages/`));
    const [message] = await inbox(tokens[i]);
    assert.strictEqual(message.data.i, String(i), JSON.stringify(message));
  }
  assert.strictEqual(batch.responses[2].success, false);
  assert.strictEqual(batch.responses[2].error.code, 'messaging/registration-token-not-registered');
});

test('sendEachForMulticast over HTTP/2 reaches every device', async () => {
  const tokens = await devices(4);
  const batch = await getMessaging(app).sendEachForMulticast({ tokens, data: { greeting: 'hi' } });
  assert.strictEqual(batch.successCount, 4, JSON.stringify(batch));
  for (const token of tokens) {
    const messages = await inbox(token);
    assert.strictEqual(messages.length, 1);
    assert.strictEqual(messages[0].data.greeting, 'hi');
  }
});
