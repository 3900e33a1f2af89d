// The admin console in a real browser: Playwright (playwright-core, no downloaded browser)
// drives Debian's Chromium against a running sandbox `pushgate serve` (gateway + emulator)
// and a second gateway with two apps for isolation. Started by
// crates/pushgate/tests/console.rs, which passes the addresses and keys in the environment.
// Each test saves screenshots under OUTPUT_DIR/<test>/.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (crates/pushgate/tests/console.rs sets it)`);
  return value;
};

const GATEWAY = env("GATEWAY_URL");
const EMULATOR = env("EMULATOR_URL");
const KEY = env("API_KEY");
const ISO = env("ISO_URL");
const ISO_SHOP_KEY = env("ISO_SHOP_KEY");
const ISO_ADMIN_KEY = env("ISO_ADMIN_KEY");
const ISO_NEWS_DEVICE = env("ISO_NEWS_DEVICE");
const ISO_NEWS_MESSAGE = env("ISO_NEWS_MESSAGE");
const ISO_NEWS_SECRET = env("ISO_NEWS_SECRET");
const OUTPUT = env("OUTPUT_DIR");
const CHROMIUM = env("CHROMIUM");
const APP = "sandbox";
const RUN = Date.now().toString(36);

let browser;

test.before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--no-proxy-server",
      // Nothing but this machine: every other host name fails to resolve.
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ],
  });
});

test.after(async () => {
  if (browser) {
    await browser.close();
  }
});

/// A page in a fresh context (its own cookies); `bypassCSP` lets axe-core be injected, and
/// makes the escaping test stronger: markup that got through would run.
async function newPage(options = {}) {
  const context = await browser.newContext({ bypassCSP: !!options.bypassCSP });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  return page;
}

async function shot(page, testName, name) {
  const dir = path.join(OUTPUT, testName);
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

async function signIn(page, base, key) {
  const response = await page.goto(`${base}/admin`);
  assert.equal(response.status(), 200);
  assert.match(page.url(), /\/admin\/login$/, "an anonymous visit lands on the sign-in page");
  await page.getByLabel("Key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/admin`);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
}

async function json(url, options = {}) {
  const response = await fetch(url, {
    ...options,
    headers: { "content-type": "application/json", ...(options.headers || {}) },
  });
  const text = await response.text();
  assert.ok(response.ok, `${options.method || "GET"} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const api = (pathname, options = {}) =>
  json(`${GATEWAY}${pathname}`, {
    ...options,
    headers: { authorization: `Bearer ${KEY}`, ...(options.headers || {}) },
  });

/// A virtual device that registers itself with the sandbox through the C2DM-era flow;
/// resolves once the gateway holds its confirmed token.
async function selfRegisteredDevice(deviceId) {
  const created = await json(`${EMULATOR}/emulator/devices`, {
    method: "POST",
    body: JSON.stringify({ protocol: "c2dm", confirm_via: GATEWAY, device_ids: [deviceId] }),
  });
  const token = created.devices[0].token;
  await poll(`device ${deviceId} confirmed`, async () => {
    const device = await api(`/v1/apps/${APP}/devices/${encodeURIComponent(deviceId)}`).catch(() => null);
    return device && device.token === token;
  });
  return token;
}

async function poll(what, check, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) {
      return;
    }
    assert.ok(Date.now() < until, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/// Waits (across the page's own refreshes) until the message page says it is done.
async function waitUntilDone(page) {
  await poll("the message page to say done", async () => {
    try {
      const status = await page.locator("#message-status").textContent({ timeout: 2000 });
      return status.startsWith("done");
    } catch (e) {
      return false; // reloading
    }
  });
}

async function inbox(token) {
  const answer = await json(`${EMULATOR}/emulator/devices/${encodeURIComponent(token)}/messages`);
  return answer.messages;
}

/// Fills the Send form for one device and submits it; lands on the message's page unless
/// `expectRefusal`. C2DM (the channel of self-registered devices) needs a collapse key.
async function sendFromForm(page, deviceId, data, { collapseKey = "console", expectRefusal = false } = {}) {
  await page.getByRole("navigation").getByRole("link", { name: "Send" }).click();
  await page.getByLabel("Target", { exact: true }).selectOption("device_ids");
  await page.getByLabel("Targets").fill(deviceId);
  await page.getByLabel("Data", { exact: true }).fill(data);
  await page.getByLabel("Collapse key").fill(collapseKey);
  await page.getByRole("button", { name: "Send" }).click();
  if (expectRefusal) {
    await page.locator("#send-error").waitFor();
    return;
  }
  await page.waitForURL(/\/admin\/apps\/sandbox\/messages\/[0-9a-f-]{36}$/);
}

async function openDevice(page, deviceId) {
  await page.getByRole("navigation").getByRole("link", { name: "Devices" }).click();
  await page.getByLabel("Device id (prefix)").fill(deviceId);
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator("a.device-link", { hasText: deviceId }).click();
  await page.locator("#device-id").waitFor();
  assert.equal(await page.locator("#device-id").textContent(), deviceId);
}

test("a self-registered device is found, sent a message from the form, and receives it", async () => {
  const name = "send-to-a-found-device";
  const deviceId = `console-phone-${RUN}`;
  const token = await selfRegisteredDevice(deviceId);
  const page = await newPage();
  await signIn(page, GATEWAY, KEY);
  await shot(page, name, "1-overview");
  await openDevice(page, deviceId);
  assert.equal(await page.locator("#device-state").textContent(), "active");
  assert.equal(await page.locator("#device-token").textContent(), token);
  await shot(page, name, "2-device");
  const unique = `hello-${RUN}`;
  // The form goes through the API's checks: C2DM refuses a message without a collapse key,
  // the form says so with what was typed kept, and nothing is sent.
  await sendFromForm(page, deviceId, `text=${unique}`, { collapseKey: "", expectRefusal: true });
  assert.match(await page.locator("#send-error").textContent(), /collapse_key/);
  assert.equal(await page.getByLabel("Targets").inputValue(), deviceId);
  await shot(page, name, "3-refused-by-the-api-rules");
  await page.getByLabel("Collapse key").fill("hello");
  await page.getByRole("button", { name: "Send" }).click();
  await page.waitForURL(/\/admin\/apps\/sandbox\/messages\/[0-9a-f-]{36}$/);
  await waitUntilDone(page);
  const row = page.locator("#message-results tbody tr");
  assert.equal(await row.count(), 1);
  assert.equal(await row.locator("td").nth(0).textContent(), deviceId);
  assert.equal(await row.locator("td").nth(3).textContent(), "sent");
  assert.match(await page.locator("#message-counts").textContent(), /sent\s+1/);
  await shot(page, name, "4-message-sent");
  const messages = await inbox(token);
  assert.ok(
    messages.some((m) => JSON.stringify(m.data).includes(unique)),
    `the emulator's inbox holds the message: ${JSON.stringify(messages)}`,
  );
  // The device's page now lists the provider's answer.
  await openDevice(page, deviceId);
  assert.match(await page.locator("#recent-deliveries").textContent(), /delivered/);
  await shot(page, name, "5-device-recent-deliveries");
  await page.context().close();
});

test("a disabled device is skipped by a send, and enabled again", async () => {
  const name = "disable-skips-the-device";
  const deviceId = `console-off-${RUN}`;
  const token = await selfRegisteredDevice(deviceId);
  const page = await newPage();
  await signIn(page, GATEWAY, KEY);
  await openDevice(page, deviceId);
  await page.getByRole("button", { name: "Disable" }).click();
  await page.locator("#device-state", { hasText: "disabled" }).waitFor();
  await shot(page, name, "1-disabled");
  const before = (await inbox(token)).length;
  await sendFromForm(page, deviceId, `text=skipped-${RUN}`);
  await waitUntilDone(page);
  const cells = page.locator("#message-results tbody tr td");
  assert.equal(await cells.nth(3).textContent(), "failed");
  assert.equal(await cells.nth(6).textContent(), "device_disabled");
  assert.equal(await cells.nth(4).textContent(), "0", "never handed to the provider");
  await shot(page, name, "2-message-skipped");
  assert.equal((await inbox(token)).length, before, "nothing reached the device");
  await openDevice(page, deviceId);
  await page.getByRole("button", { name: "Enable" }).click();
  await page.locator("#device-state", { hasText: "active" }).waitFor();
  await shot(page, name, "3-enabled");
  await page.context().close();
});

test("a live event arrives on the events page", async () => {
  const name = "live-event";
  const page = await newPage();
  await signIn(page, GATEWAY, KEY);
  await page.getByRole("navigation").getByRole("link", { name: "Events" }).click();
  await page.locator("#live-status", { hasText: "Live: connected" }).waitFor();
  await shot(page, name, "1-connected");
  // A device whose app was uninstalled: the provider says its token is dead, the gateway
  // invalidates it and writes the events.
  const created = await json(`${EMULATOR}/emulator/devices`, { method: "POST", body: "{}" });
  const token = created.devices[0].token;
  const deviceId = `console-gone-${RUN}`;
  await api(`/v1/apps/${APP}/devices/${deviceId}`, { method: "PUT", body: JSON.stringify({ token }) });
  await json(`${EMULATOR}/emulator/devices/${encodeURIComponent(token)}/uninstall`, { method: "POST" });
  await api(`/v1/apps/${APP}/messages`, {
    method: "POST",
    body: JSON.stringify({ targets: { device_ids: [deviceId] }, data: { text: "are you there" } }),
  });
  const live = page.locator("#live-events tbody tr.fresh", { hasText: deviceId });
  await live.filter({ hasText: "device_invalidated" }).first().waitFor();
  await shot(page, name, "2-event-arrived");
  // It came through the stream: the page was not reloaded.
  assert.equal(await page.locator("#live-status").textContent(), "Live: connected");
  await page.context().close();
});

test("markup and quotes from clients render as text", async () => {
  const name = "escaping";
  const hostile = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'"&`;
  const deviceId = `x${RUN}${hostile}`;
  const created = await json(`${EMULATOR}/emulator/devices`, { method: "POST", body: "{}" });
  await api(`/v1/apps/${APP}/devices/${encodeURIComponent(deviceId)}`, {
    method: "PUT",
    body: JSON.stringify({ token: created.devices[0].token, tags: [hostile], user: hostile }),
  });
  const page = await newPage({ bypassCSP: true });
  let dialogs = 0;
  page.on("dialog", (d) => {
    dialogs += 1;
    d.dismiss();
  });
  await signIn(page, GATEWAY, KEY);
  await page.getByRole("navigation").getByRole("link", { name: "Devices" }).click();
  await page.getByLabel("Tag").fill(hostile);
  await page.getByRole("button", { name: "Search" }).click();
  const link = page.locator("a.device-link");
  assert.equal(await link.count(), 1);
  assert.equal(await link.textContent(), deviceId);
  assert.equal(await page.getByLabel("Tag").inputValue(), hostile, "the search field keeps it as typed");
  await shot(page, name, "1-search");
  await link.click();
  assert.equal(await page.locator("#device-id").textContent(), deviceId);
  assert.equal(await page.locator("#device-tags").textContent(), hostile);
  assert.equal(await page.locator("#device-user").textContent(), hostile);
  await shot(page, name, "2-device");
  await sendFromForm(page, deviceId, `note=${hostile}`);
  const payload = JSON.parse(await page.locator("#message-payload").textContent());
  assert.equal(payload.data.note, hostile);
  await shot(page, name, "3-message");
  assert.equal(await page.evaluate(() => window.__pwned), undefined, "no injected script ran");
  assert.equal(await page.locator("main script, main img").count(), 0, "no injected element");
  assert.equal(dialogs, 0);
  await page.context().close();
});

test("an app key cannot open another app's pages or reach its data by URL", async () => {
  const name = "app-isolation";
  const page = await newPage();
  await signIn(page, ISO, ISO_SHOP_KEY);
  const nav = await page.getByRole("navigation").textContent();
  assert.match(nav, /shop/);
  assert.doesNotMatch(nav, /news/);
  assert.doesNotMatch(await page.locator("main").textContent(), /App news/);
  await shot(page, name, "1-shop-overview");
  const guesses = [
    "/admin/apps/news/devices",
    `/admin/apps/news/device?id=${encodeURIComponent(ISO_NEWS_DEVICE)}`,
    `/admin/apps/shop/device?id=${encodeURIComponent(ISO_NEWS_DEVICE)}`,
    "/admin/apps/news/send",
    "/admin/apps/news/events",
    "/admin/apps/news/events/stream",
    `/admin/apps/news/messages/${ISO_NEWS_MESSAGE}`,
    `/admin/apps/shop/messages/${ISO_NEWS_MESSAGE}`,
    `/admin/apps/news/device/delete?id=${encodeURIComponent(ISO_NEWS_DEVICE)}`,
  ];
  for (const [i, guess] of guesses.entries()) {
    const response = await page.goto(`${ISO}${guess}`);
    assert.equal(response.status(), 404, guess);
    const body = await response.text();
    assert.ok(!body.includes(ISO_NEWS_SECRET), `${guess} shows news data`);
    if (i === 1) {
      await shot(page, name, "2-news-device-404");
    }
  }
  // A form posted to the other app does nothing either.
  await page.goto(`${ISO}/admin/apps/shop/send`);
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const post = await page.request.post(`${ISO}/admin/apps/news/device/state`, {
    form: { csrf, id: ISO_NEWS_DEVICE, state: "disabled" },
  });
  assert.equal(post.status(), 404);
  await page.context().close();

  // The admin key sees both apps, and the news device is still active.
  const admin = await newPage();
  await signIn(admin, ISO, ISO_ADMIN_KEY);
  const adminNav = await admin.getByRole("navigation").textContent();
  assert.match(adminNav, /news/);
  assert.match(adminNav, /shop/);
  const device = await admin.goto(`${ISO}/admin/apps/news/device?id=${encodeURIComponent(ISO_NEWS_DEVICE)}`);
  assert.equal(device.status(), 200);
  assert.equal(await admin.locator("#device-state").textContent(), "active");
  assert.match(await admin.locator("#device-tags").textContent(), new RegExp(ISO_NEWS_SECRET));
  await shot(admin, name, "3-admin-sees-news");
  await admin.context().close();
});

test("forms work from the keyboard alone", async () => {
  const name = "keyboard";
  const page = await newPage();
  await page.goto(`${GATEWAY}/admin/login`);
  // The key field gets the focus; Enter submits.
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === "key");
  await page.keyboard.type(KEY);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${GATEWAY}/admin`);
  await page.goto(`${GATEWAY}/admin/apps/${APP}/send`);
  await page.getByLabel("Target", { exact: true }).focus();
  const reached = [];
  for (let i = 0; i < 16; i += 1) {
    await page.keyboard.press("Tab");
    reached.push(await page.evaluate(() => document.activeElement.id));
  }
  for (const id of ["s-targets", "s-title", "s-body", "s-data", "s-collapse", "s-ttl", "s-priority", "s-channel", "s-dry-run", "send-submit"]) {
    assert.ok(reached.includes(id), `Tab reaches #${id}: ${reached.join(", ")}`);
  }
  await page.locator("#s-dry-run").focus();
  await page.keyboard.press("Space");
  assert.equal(await page.locator("#s-dry-run").isChecked(), true);
  await shot(page, name, "1-send-form-by-keyboard");
  await page.context().close();
});

test("axe-core finds no serious or critical violation on any page", async () => {
  const name = "accessibility";
  const axePath = require.resolve("axe-core/axe.min.js");
  const page = await newPage({ bypassCSP: true });
  const check = async (label) => {
    await page.addScriptTag({ path: axePath });
    const result = await page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
    });
    const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(bad, [], `${label}: ${JSON.stringify(bad, null, 1)}`);
    await shot(page, name, label);
  };
  await page.goto(`${GATEWAY}/admin/login`);
  await check("login");
  await signIn(page, GATEWAY, KEY);
  await check("overview");
  const deviceId = `console-axe-${RUN}`;
  const created = await json(`${EMULATOR}/emulator/devices`, { method: "POST", body: "{}" });
  await api(`/v1/apps/${APP}/devices/${deviceId}`, {
    method: "PUT",
    body: JSON.stringify({ token: created.devices[0].token, tags: ["axe"] }),
  });
  await page.goto(`${GATEWAY}/admin/apps/${APP}/devices?tag=axe`);
  await check("devices");
  await page.goto(`${GATEWAY}/admin/apps/${APP}/device?id=${deviceId}`);
  await check("device");
  await page.goto(`${GATEWAY}/admin/apps/${APP}/device/delete?id=${deviceId}`);
  await check("delete-confirmation");
  await page.goto(`${GATEWAY}/admin/apps/${APP}/send`);
  await check("send");
  await sendFromForm(page, deviceId, "text=axe");
  await waitUntilDone(page);
  await check("message");
  await page.goto(`${GATEWAY}/admin/apps/${APP}/events`);
  await check("events");
  await page.goto(`${GATEWAY}/admin/apps/${APP}/nothing-here`);
  await page.goto(`${GATEWAY}/admin/apps/elsewhere/devices`);
  await check("not-found");
  // The delete confirmation deletes.
  await page.goto(`${GATEWAY}/admin/apps/${APP}/device/delete?id=${deviceId}`);
  await page.getByRole("button", { name: "Delete the device" }).click();
  await page.locator("#notice").waitFor();
  const gone = await fetch(`${GATEWAY}/v1/apps/${APP}/devices/${deviceId}`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  assert.equal(gone.status, 404);
  await page.context().close();
});
