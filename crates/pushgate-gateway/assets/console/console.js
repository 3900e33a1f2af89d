// The pushgate admin console's only script: the events page's live tail. Each event from
// the stream is added as a table row whose cells are set with textContent, so nothing a
// client sent can become markup.
"use strict";

function addEventRow(tbody, app, ev) {
  const tr = document.createElement("tr");
  tr.className = "fresh";
  tr.dataset.seq = String(ev.id);
  const cells = [String(ev.id), ev.created_at, ev.type, null, JSON.stringify(ev.data)];
  cells.forEach(function (text, i) {
    const td = document.createElement("td");
    if (i === 3) {
      if (ev.device_id !== null && ev.device_id !== undefined) {
        const a = document.createElement("a");
        a.href = "/admin/apps/" + encodeURIComponent(app) + "/device?id=" + encodeURIComponent(ev.device_id);
        a.textContent = ev.device_id;
        td.appendChild(a);
      }
    } else if (i === 4) {
      const code = document.createElement("code");
      code.textContent = text;
      td.appendChild(code);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
  });
  tbody.insertBefore(tr, tbody.firstChild);
}

function startLiveTail() {
  const table = document.getElementById("live-events");
  if (!table) {
    return;
  }
  const tbody = table.tBodies[0];
  const status = document.getElementById("live-status");
  const source = new EventSource(table.dataset.stream);
  source.onopen = function () { status.textContent = "Live: connected"; };
  source.onerror = function () { status.textContent = "Live: reconnecting…"; };
  const onEvent = function (message) {
    let ev;
    try { ev = JSON.parse(message.data); } catch (e) { return; }
    if (tbody.querySelector('tr[data-seq="' + String(Number(ev.id)) + '"]')) {
      return;
    }
    addEventRow(tbody, table.dataset.app, ev);
  };
  table.dataset.kinds.split(" ").filter(Boolean).forEach(function (kind) {
    source.addEventListener(kind, onEvent);
  });
  source.addEventListener("message", onEvent);
}

document.addEventListener("DOMContentLoaded", startLiveTail);
