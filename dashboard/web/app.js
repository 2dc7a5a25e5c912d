// ZeroTask dashboard: renders the broker's snapshots and state stream (Server-Sent Events from
// /api/events). Plain DOM, no dependencies; untrusted text goes in with textContent only.
"use strict";

const FINAL = new Set(["SUCCESS", "FAILURE", "REVOKED", "EXPIRED", "UNKNOWN"]);
const HISTORY = 300;     // chart points kept (one per snapshot: 5 minutes at the default 1 s)
const MAX_TASKS = 100;   // rows of the recent tasks table
const MAX_FAILURES = 50; // rows of the recent failures table

const $ = (id) => document.getElementById(id);
let prev = null;                 // the previous snapshot, for rates
const history = [];              // {t, rate, latency}
const tasks = new Map();         // id -> {time, id, method, queue, state}, insertion ordered
const failures = [];             // records, newest first

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}

function num(v) { return el("td", v, "num"); }

// empty is the row of a table with nothing to show yet.
function empty(cols, text) {
  const td = el("td", text, "muted");
  td.colSpan = cols;
  return row([td]);
}

function ago(ms) {
  if (!ms) return "-";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 1) return "now";
  if (s < 120) return s.toFixed(0) + " s ago";
  return (s / 60).toFixed(0) + " min ago";
}

function age(ms) {
  if (!ms) return "-";
  if (ms < 1000) return ms + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

async function post(path, params) {
  const r = await fetch(path, {
    method: "POST",
    headers: {"X-Zerotask-Request": "1", "Content-Type": "application/x-www-form-urlencoded"},
    body: new URLSearchParams(params),
    credentials: "same-origin",
  });
  const text = await r.text();
  if (!r.ok) throw new Error(text.trim() || r.statusText);
  return text;
}

function say(text, bad) {
  const m = $("msg");
  m.textContent = text;
  m.className = bad ? "err" : "muted";
}

// ---- snapshots ----

function onSnapshot(s) {
  $("broker").textContent = "broker " + s.stats.broker;
  for (const k of ["queued", "running", "succeeded", "failed", "retried", "revoked", "nodes", "clients"]) {
    $("stat-" + k).textContent = s.stats[k];
  }
  fill($("nodes").tBodies[0], s.nodes.map((n) => {
    const tr = row([el("td", n.name), n.methods.join(", "), n.queues.join(", "), num(n.concurrency), num(n.running), num(n.credit), ago(n.seen_ms)]);
    tr.dataset.node = n.name;
    return tr;
  }));
  const dt = prev ? (s.time_ms - prev.time_ms) / 1000 : 0;
  const before = new Map();
  if (prev) for (const q of prev.queues) before.set(q.method + "\u0000" + q.queue, q);
  let done = 0, sum = 0;
  fill($("queues").tBodies[0], s.queues.map((q) => {
    const p = before.get(q.method + "\u0000" + q.queue);
    let rin = "-", rout = "-";
    if (p && dt > 0) {
      const out = q.done - p.done;
      done += out;
      sum += q.done_sum_ms - p.done_sum_ms;
      rout = (out / dt).toFixed(1);
      rin = (Math.max(0, out + q.depth - p.depth) / dt).toFixed(1);
    }
    const depth = num(q.depth);
    depth.className = "num depth";
    const buttons = el("td");
    for (const [label, path] of [["pause", "/api/pause"], ["resume", "/api/resume"], ["purge", "/api/purge"]]) {
      const b = el("button", label, label === "purge" ? "danger" : "");
      b.onclick = async () => {
        if (label === "purge" && !window.confirm("Drop every task waiting in queue " + q.queue + "?")) return;
        try { say(label + " " + q.queue + ": " + await post(path, {queue: q.queue})); } catch (e) { say(label + " " + q.queue + ": " + e.message, true); }
      };
      buttons.appendChild(b);
      buttons.appendChild(document.createTextNode(" "));
    }
    const tr = row([q.method, q.queue, depth, age(q.oldest_ms), num(rin), num(rout), num(q.succeeded), num(q.failed), buttons]);
    tr.dataset.method = q.method;
    tr.dataset.queue = q.queue;
    return tr;
  }));
  if (prev && dt > 0) {
    history.push({t: s.time_ms, rate: done / dt, latency: done > 0 ? sum / done : null});
    if (history.length > HISTORY) history.shift();
    draw($("chart-rate"), history.map((h) => h.rate), "/s");
    draw($("chart-latency"), history.map((h) => h.latency), " ms");
  }
  prev = s;
}

// draw plots values (nulls are gaps) on a canvas, scaled to their maximum.
function draw(canvas, values, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  const style = getComputedStyle(document.body);
  const fg = style.color, line = getComputedStyle(document.documentElement).getPropertyValue("--accent") || "#2563eb";
  g.clearRect(0, 0, w, h);
  const top = 14, bottom = h - 4, left = 4, right = w - 4;
  let maxV = 0;
  for (const v of values) if (v !== null && v > maxV) maxV = v;
  if (maxV === 0) maxV = 1;
  g.globalAlpha = 0.25; g.strokeStyle = fg; g.beginPath(); g.moveTo(left, bottom); g.lineTo(right, bottom); g.stroke();
  g.globalAlpha = 1; g.fillStyle = fg; g.font = "11px system-ui,sans-serif";
  const last = values.length ? values[values.length - 1] : null;
  if (values.length) g.fillText("max " + fmt(maxV) + unit + (last !== null ? "   now " + fmt(last) + unit : ""), left, 11);
  if (values.length < 2) {
    g.globalAlpha = 0.6;
    g.fillText("collecting: one point per second from when this page opened", left, (top + bottom) / 2);
    g.globalAlpha = 1;
  }
  g.strokeStyle = line.trim(); g.lineWidth = 1.5; g.beginPath();
  const step = (right - left) / Math.max(1, HISTORY - 1);
  const x0 = right - (values.length - 1) * step;
  let pen = false;
  const dots = [];
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const x = x0 + i * step, y = bottom - (v / maxV) * (bottom - top);
    if (pen) g.lineTo(x, y); else g.moveTo(x, y);
    // A point between two gaps draws no segment: it gets a dot.
    if ((i === 0 || values[i - 1] === null) && (i === values.length - 1 || values[i + 1] === null)) dots.push([x, y]);
    pen = true;
  });
  g.stroke();
  g.fillStyle = line.trim();
  for (const [x, y] of dots) { g.beginPath(); g.arc(x, y, 2, 0, 2 * Math.PI); g.fill(); }
}

function fmt(v) { return v >= 100 ? v.toFixed(0) : v.toFixed(1); }

// ---- task states ----

function onStates(list) {
  const now = new Date().toLocaleTimeString();
  for (const n of list) {
    const t = tasks.get(n.id);
    if (t) {
      t.state = n.state; t.time = now;
      t.progress = n.progress !== undefined ? n.progress : (FINAL.has(n.state) ? undefined : t.progress);
      tasks.delete(n.id); // re-inserted: the newest change is on top
      tasks.set(n.id, t);
      continue;
    }
    tasks.set(n.id, {time: now, id: n.id, method: n.method || "", queue: n.queue || "", state: n.state, progress: n.progress});
    if (tasks.size > MAX_TASKS) tasks.delete(tasks.keys().next().value);
  }
  renderTasks();
}

function renderTasks() {
  const rows = [];
  for (const t of tasks.values()) {
    const b = el("button", "revoke", "danger revoke");
    b.disabled = FINAL.has(t.state);
    b.onclick = () => revoke(t.id);
    const tr = row([t.time, el("td", t.id, "id"), t.method, t.queue, el("td", t.state, "state " + t.state), el("td", progressText(t.progress), "progress"), (() => { const td = el("td"); td.appendChild(b); return td; })()]);
    tr.dataset.id = t.id;
    rows.push(tr);
  }
  rows.reverse();
  fill($("tasks").tBodies[0], rows.length ? rows : [empty(7, "No task has changed state since this page opened.")]);
}

// progressText shows a dispatch.Progress report ({done,total,note}) or any other JSON value.
function progressText(p) {
  if (p === undefined || p === null) return "";
  if (typeof p === "object" && typeof p.done === "number" && typeof p.total === "number") {
    const pct = p.total > 0 ? " (" + Math.floor((100 * p.done) / p.total) + "%)" : "";
    return p.done + "/" + p.total + pct + (p.note ? " " + p.note : "");
  }
  return JSON.stringify(p);
}

async function revoke(id) {
  try {
    const rec = JSON.parse(await post("/api/revoke", {id}));
    say("revoke " + id + ": " + (rec.state || "sent"));
    if (rec.state) onStates([{id, state: rec.state, method: rec.method, queue: rec.queue}]);
    if ($("lookup-id").value.trim() === id) lookup(id);
  } catch (e) {
    say("revoke " + id + ": " + e.message, true);
  }
}

// ---- failures ----

function onFailure(rec) {
  const i = failures.findIndex((f) => f.id === rec.id);
  if (i >= 0) failures.splice(i, 1);
  rec._time = new Date(rec.failed_ms || Date.now()).toLocaleTimeString();
  failures.unshift(rec);
  if (failures.length > MAX_FAILURES) failures.pop();
  fill($("failures").tBodies[0], failures.length === 0 ? [empty(7, "No failures.")] : failures.map((f) => {
    const err = f.error ? (f.error.message || JSON.stringify(f.error)) + (f.error.data !== undefined ? " " + JSON.stringify(f.error.data) : "") : "";
    let params = f.params !== undefined ? JSON.stringify(f.params) : "";
    if (params.length > 120) params = params.slice(0, 119) + "\u2026";
    const b = el("button", "requeue", "requeue");
    b.onclick = () => requeue(f.id);
    const tr = row([f._time, el("td", f.id, "id"), f.method || "", el("td", params, "id params"), f.node || "", el("td", err, "err"), (() => { const td = el("td"); td.appendChild(b); return td; })()]);
    tr.dataset.id = f.id;
    return tr;
  }));
}

// requeue runs an archived failure again (broker.requeue) under its id.
async function requeue(id) {
  try {
    const r = JSON.parse(await post("/api/requeue", {id}));
    say("requeue " + id + ": " + (r.requeued ? "running again" : "not in the archive"), !r.requeued);
  } catch (e) {
    say("requeue " + id + ": " + e.message, true);
  }
}

// ---- lookup ----

async function lookup(id) {
  const out = $("record");
  try {
    const r = await fetch("/api/task?id=" + encodeURIComponent(id), {credentials: "same-origin"});
    const rec = await r.json();
    out.textContent = JSON.stringify(rec, null, 2);
    out.className = r.ok ? "record" : "record err";
    $("lookup-revoke").disabled = !r.ok || FINAL.has(rec.state);
  } catch (e) {
    out.textContent = e.message;
    out.className = "record err";
  }
}

$("lookup").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("lookup-id").value.trim();
  if (id) lookup(id);
});
$("lookup-revoke").addEventListener("click", () => {
  const id = $("lookup-id").value.trim();
  if (id) revoke(id);
});

// ---- the stream ----

function connect() {
  const es = new EventSource("/api/events");
  const conn = $("conn");
  es.onopen = () => { conn.textContent = "live"; conn.className = "conn on"; };
  es.onerror = () => { conn.textContent = "reconnecting"; conn.className = "conn off"; };
  es.addEventListener("snapshot", (e) => onSnapshot(JSON.parse(e.data)));
  es.addEventListener("state", (e) => onStates(JSON.parse(e.data)));
  es.addEventListener("failure", (e) => onFailure(JSON.parse(e.data)));
}
renderTasks();
draw($("chart-rate"), [], "/s");
draw($("chart-latency"), [], " ms");
fill($("failures").tBodies[0], [empty(7, "No failures.")]);
connect();
