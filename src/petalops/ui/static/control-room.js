// The control room: polls /ui/state, draws it, and sends guarded actions to /ui/actions.
// Every value from the server is put in the page as text (textContent), never as HTML.
"use strict";

const TOKEN_KEY = "petalops.adminToken";
const charts = {};
let pollMs = 3000;
let state = null;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  return String(value);
}

function pct(value) {
  return value === null || value === undefined ? "—" : (value * 100).toFixed(2) + " %";
}

function when(ts) {
  if (!ts) return "—";
  return new Date(ts * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function fillRows(tableId, rows) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const cell of cells) tr.append(cell instanceof Node ? wrap(cell) : el("td", cell));
    return tr;
  }));
}

function wrap(node) {
  const td = document.createElement("td");
  td.append(node);
  return td;
}

function verdictCell(passed) {
  if (passed === true) return el("span", "✓ pass", "pass");
  if (passed === false) return el("span", "✗ fail", "fail");
  return el("span", "– no data", "none");
}

// -- the sections --------------------------------------------------------------------------

function drawServing(s) {
  $("model").textContent = s.model;
  const slots = (s.serving && s.serving.slots) || {};
  const champion = (slots.champion && slots.champion.version) || s.aliases.champion;
  const challenger = (slots.challenger && slots.challenger.version) || s.aliases.challenger;
  const line = $("serving");
  line.replaceChildren();
  if (!champion) {
    line.append("nothing serves yet: run `petalops train`");
    return;
  }
  line.append("serving ", el("strong", "v" + champion), " (champion)");
  if (challenger) line.append(" · challenger ", el("strong", "v" + challenger));
  const traffic = (s.rollout && s.rollout.traffic) || (s.serving && s.serving.traffic) || {};
  if (challenger && traffic.weight !== undefined) {
    line.append(" · " + (traffic.shadow ? "shadow (answers from the champion)" :
      fmt(traffic.weight, 2) + " % of traffic to the challenger"));
  }
}

function drawRollout(s) {
  const rollout = s.rollout || {};
  const plan = rollout.plan;
  const summary = $("rollout-summary");
  const weights = $("weights");
  weights.replaceChildren();
  if (!plan) {
    summary.textContent = "no rollout: start one with `petalops rollout start <version>`";
    $("verdict").textContent = "";
    fillRows("checks", []);
    return;
  }
  const state = plan.paused ? "paused" : plan.phase;
  summary.textContent = `${plan.strategy} of v${plan.version} against v${plan.baseline} · ` +
    `step ${plan.step + 1} of ${plan.n_steps ?? plan.steps.length} · ${state}` +
    (rollout.next_step_in_s !== null && rollout.next_step_in_s !== undefined
      ? ` · next decision in ${fmt(rollout.next_step_in_s, 0)} s` : "") +
    (plan.reason ? ` · ${plan.reason}` : "");
  const weight = Number(plan.weight ?? 0);
  const champ = el("span", `champion v${plan.baseline} ${fmt(100 - weight, 1)} %`, "champion");
  champ.style.width = `${100 - weight}%`;
  const chall = el("span", `challenger v${plan.version} ${fmt(weight, 1)} %`, "challenger");
  chall.style.width = `${weight}%`;
  weights.append(champ, chall);
  const window = rollout.window || {};
  const challenger = window.challenger || {};
  const champion = window.champion || {};
  $("verdict").textContent = window.decision
    ? `verdict so far: ${window.decision} — ${(window.reasons || []).join("; ") || "no reason given"}` +
      ` (samples: challenger ${challenger.requests ?? 0}, champion ${champion.requests ?? 0})`
    : "";
  fillRows("checks", (window.checks || []).map((c) => [
    c.name, fmt(c.value, 4), fmt(c.limit, 4), verdictCell(c.passed),
  ]));
}

function drawTraffic(s) {
  fillRows("traffic", Object.entries(s.traffic || {}).map(([variant, t]) => [
    variant, "v" + t.version, fmt(t.rate_per_s, 2), pct(t.error_rate), fmt(t.p50_ms, 2), fmt(t.p99_ms, 2),
  ]));
}

function drawHistory(s) {
  fillRows("history", (s.history || []).slice().reverse().map((e) => [
    when(e.ts), e.action, e.phase, e.step + 1, fmt(e.weight, 2) + " %", e.verdict || "—", e.reason || "",
  ]));
}

function drawVersions(s) {
  fillRows("versions", (s.versions || []).map((v) => {
    const gate = el("span");
    const failed = (v.gate_checks || []).filter((c) => !c.passed).map((c) => c.name);
    gate.append(verdictCell(v.gate ? v.gate === "passed" : null));
    gate.title = (v.gate_checks || []).map((c) => `${c.passed ? "✓" : "✗"} ${c.name}`).join("\n");
    if (failed.length) gate.append(" " + failed.join(", "));
    const checksum = el("span", v.checksum, v.checksum === "verified" ? "pass"
      : (v.checksum === "mismatch" || v.checksum === "missing") ? "fail" : "none");
    checksum.title = v.sha256 || "no sha256 recorded";
    return [
      "v" + v.version, v.aliases.map((a) => "@" + a).join(" ") || "—", when(v.created),
      fmt(v.metrics.accuracy, 4), gate, checksum,
      el("code", (v.data_fingerprint || "—").slice(0, 12) + (v.data_rows ? ` · ${v.data_rows} rows` : "")),
      el("code", (v.code_commit || "—").slice(0, 10)),
    ];
  }));
}

function drawAlerts(s) {
  const list = $("alerts");
  const alerts = (s.slow && s.slow.alerts) || [];
  list.replaceChildren(...(alerts.length ? alerts.map((a) => {
    const item = el("li", `${a.severity.toUpperCase()}: ${a.name} — ${a.message}`, a.severity);
    return item;
  }) : [el("li", "none firing", "none")]));
}

function chart(key, container, options, data) {
  const width = Math.max(200, container.clientWidth);
  const existing = charts[key];
  if (existing && existing.signature === options.signature && existing.width === width) {
    existing.plot.setData(data);
    return;
  }
  if (existing) existing.plot.destroy();
  container.replaceChildren();
  const plot = new uPlot({ ...options, width, height: options.height || 180 }, data, container);
  charts[key] = { plot, signature: options.signature, width };
}

const COLORS = ["#0b5cad", "#c45a00", "#1a7f37", "#8250df", "#9a6700", "#cf222e"];
const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];

function band(b) {
  return b && b.value !== null && b.value !== undefined
    ? `${fmt(b.value, 3)} [${fmt(b.low, 3)}, ${fmt(b.high, 3)}]` : "—";
}

// Per version: estimated accuracy (from the calibrated probabilities, no labels needed) with
// its band, and realized accuracy where labels came, over the newest rows' chunks.
function drawQuality(s) {
  const slow = s.slow || {};
  const timeline = (slow.timeline || []).filter((v) => v.points && v.points.length);
  const note = $("quality-note");
  const container = $("quality-chart");
  const live = (slow.live || []).map((r) =>
    `v${r.model_version} ${r.variant}: ${fmt(r.accuracy, 4)} on ${r.labelled} labels`);
  if (!timeline.length) {
    note.textContent = "no predictions logged yet: accuracy shows once there are some";
    container.replaceChildren();
    if (charts.quality) { charts.quality.plot.destroy(); delete charts.quality; }
    return;
  }
  const times = [...new Set(timeline.flatMap((v) => v.points.map((p) => p.ts)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const data = [times];
  const series = [{}];
  const bands = [];
  const lines = [];
  timeline.forEach((v, i) => {
    const color = COLORS[i % COLORS.length];
    const column = (pick) => {
      const values = times.map(() => null);
      for (const p of v.points) values[index.get(p.ts)] = pick(p);
      return values;
    };
    const first = data.length;
    data.push(column((p) => p.estimated.value), column((p) => p.estimated.low),
      column((p) => p.estimated.high), column((p) => p.realized));
    series.push(
      { label: `v${v.model_version} estimated`, stroke: color, width: 2, spanGaps: true },
      { label: `v${v.model_version} band low`, stroke: color, width: 1, dash: [2, 3], spanGaps: true },
      { label: `v${v.model_version} band high`, stroke: color, width: 1, dash: [2, 3], spanGaps: true },
      { label: `v${v.model_version} realized`, stroke: color, width: 2, dash: [8, 4],
        points: { show: true, size: 7 }, spanGaps: true },
    );
    bands.push({ series: [first + 2, first + 1], fill: color + "22" });
    const last = v.points[v.points.length - 1];
    lines.push(`v${v.model_version}: estimated ${band(last.estimated)} over its newest ${last.rows} rows` +
      (last.realized !== null && last.realized !== undefined
        ? `, realized ${fmt(last.realized, 4)} on ${last.labelled} labels` : ", no labels yet"));
  });
  note.textContent = lines.join(" · ") + (live.length ? ` · live on labels: ${live.join(", ")}` : "");
  chart("quality", container, {
    signature: timeline.map((v) => v.model_version).join("|"),
    bands,
    scales: {
      // One point (or a few seconds) would otherwise stretch the axis over years.
      x: {
        range: (u) => {
          const xs = u.data[0];
          const lo = xs[0];
          const hi = xs[xs.length - 1];
          return hi - lo < 120 ? [lo - 60, hi + 60] : [lo, hi];
        },
      },
      y: { range: [0, 1] },
    },
    series,
    axes: [{}, { label: "accuracy" }],
  }, data);
}

function drawDrift(s) {
  const drift = s.slow && s.slow.drift;
  const box = $("drift");
  const summary = $("drift-summary");
  if (!drift) {
    summary.textContent = (s.slow && s.slow.notes && s.slow.notes.join("; ")) || "no drift analysis yet";
    box.replaceChildren();
    return;
  }
  const rows = drift.window ? drift.window.rows : 0;
  summary.textContent = (drift.dataset_drift ? "⚠ DATASET DRIFT" : "no dataset drift") +
    ` · ${rows} live rows against ${drift.reference}` + (drift.reason ? ` · ${drift.reason}` : "");
  const histograms = drift.histograms || {};
  const names = Object.keys(drift.features || {});
  const existing = new Map([...box.children].map((n) => [n.dataset.feature, n]));
  const nodes = names.map((name) => {
    const f = drift.features[name];
    let card = existing.get(name);
    if (!card) {
      card = el("div", null, "feature");
      card.dataset.feature = name;
      card.append(el("h3"), el("table"), el("div", null, "chart"));
    }
    card.querySelector("h3").textContent = `${name}: ${f.drift ? "✗ drifted" : "✓ stable"}`;
    card.querySelector("h3").className = f.drift ? "fail" : "pass";
    const table = card.querySelector("table");
    table.replaceChildren(...Object.entries(f.statistics || {}).map(([stat, m]) => {
      const tr = document.createElement("tr");
      tr.append(el("td", stat), el("td", fmt(m.value, 4)), el("td", "threshold " + fmt(m.threshold, 4)),
        wrap(m.reached === null || m.reached === undefined ? verdictCell(null) : verdictCell(!m.reached)));
      return tr;
    }));
    const h = histograms[name];
    if (h) {
      const centers = h.edges.slice(0, -1).map((e, i) => (e + h.edges[i + 1]) / 2);
      const bars = uPlot.paths.bars({ size: [0.8], gap: 1 });
      chart("drift:" + name, card.querySelector(".chart"), {
        signature: "bars", height: 150, scales: { x: { time: false } },
        series: [{ label: name }, { label: "reference", stroke: "#0b5cad", fill: "rgba(11,92,173,.35)", paths: bars },
          { label: "live window", stroke: "#c45a00", fill: "rgba(196,90,0,.25)", paths: bars, width: 2 }],
        axes: [{}, { label: "share" }],
      }, [centers, h.reference, h.window]);
    }
    return card;
  });
  box.replaceChildren(...nodes);
}

function drawProblems(s) {
  const problems = Object.entries(s.errors || {});
  $("problems").hidden = !problems.length;
  $("problem-list").replaceChildren(...problems.map(([section, why]) => el("li", `${section}: ${why}`)));
}

function draw(s) {
  state = s;
  drawServing(s);
  drawRollout(s);
  drawTraffic(s);
  drawHistory(s);
  drawVersions(s);
  drawAlerts(s);
  drawQuality(s);
  drawDrift(s);
  drawProblems(s);
  drawGate();
  $("updated").textContent = when(s.generated);
}

// -- the audit trail (an admin route: read with the token, never part of /ui/state) --------

const AUDIT_EVERY = 5; // polls between two reads of the trail (and after every action)
let auditPolls = 0;

function change(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "object") return String(value);
  return Object.entries(value).map(([k, v]) => `${k}=${v === null ? "—" : v}`).join(", ");
}

async function drawAudit() {
  const note = $("audit-note");
  if (!token()) {
    fillRows("audit", []);
    note.textContent = "Enter the admin token to see the audit trail (it is an admin route).";
    return;
  }
  try {
    const response = await fetch("/admin/audit?limit=20", {
      headers: { Authorization: `Bearer ${token()}` },
      cache: "no-store",
    });
    const answer = await response.json().catch(() => ({ error: "no JSON answer" }));
    if (!response.ok) {
      fillRows("audit", []);
      note.textContent = `The audit trail is refused (HTTP ${response.status}): ${answer.error || ""}`;
      return;
    }
    const events = answer.events || [];
    fillRows("audit", events.map((e) => [when(e.ts), e.actor, e.action, e.target, change(e.before), change(e.after)]));
    note.textContent = events.length ? `The last ${events.length} admin actions, newest first.` : "No admin action recorded yet.";
  } catch (error) {
    note.textContent = `The audit trail cannot be read (${error.message}).`;
  }
}

// -- polling -------------------------------------------------------------------------------

async function poll() {
  try {
    // "no-cache": the browser revalidates its copy (If-None-Match); an unchanged document
    // comes back as a bodiless 304, which fetch hands over as the cached 200.
    const response = await fetch("/ui/state", { cache: "no-cache" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const s = await response.json();
    pollMs = Math.max(1000, (s.poll_seconds || 3) * 1000);
    $("poll").textContent = String(pollMs / 1000);
    draw(s);
    if (auditPolls++ % AUDIT_EVERY === 0) drawAudit();
    $("status").textContent = "live";
  } catch (error) {
    $("status").textContent = `cannot reach the server (${error.message}); retrying`;
  }
  setTimeout(poll, document.hidden ? pollMs * 5 : pollMs);
}

// -- the token gate and the actions ----------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function drawGate() {
  const has = Boolean(token());
  const plan = state && state.rollout && state.rollout.plan;
  const active = Boolean(plan && plan.active);
  for (const button of document.querySelectorAll("button[data-action]")) {
    const action = button.dataset.action;
    let why = "";
    if (!has) why = "enter the admin token to enable actions";
    else if (action !== "alias" && !active) why = "no active rollout";
    else if (action === "pause" && plan && plan.paused) why = "already paused";
    else if (action === "resume" && plan && !plan.paused) why = "not paused";
    button.disabled = Boolean(why);
    button.title = why || `${action} (sends the admin token)`;
  }
  $("token-note").textContent = has
    ? "Token set for this tab (session storage). Actions are enabled."
    : "No token: actions are disabled. Enter the admin token (kept in this tab's session only).";
  $("action-why").textContent = has ? "" : "Actions are disabled: no admin token entered.";
}

async function act(body) {
  const output = $("action-output");
  $("action-result").hidden = false;
  output.textContent = `${body.action}…`;
  try {
    const response = await fetch("/ui/actions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token()}` },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({ error: "no JSON answer" }));
    output.textContent = `HTTP ${response.status}\n` + JSON.stringify(answer, null, 2);
    output.dataset.status = String(response.status);
  } catch (error) {
    output.textContent = `the action could not be sent: ${error.message}`;
  }
  refreshSoon();
  drawAudit();
}

let refresh = null;
function refreshSoon() {
  clearTimeout(refresh);
  refresh = setTimeout(async () => {
    const response = await fetch("/ui/state", { cache: "no-cache" });
    if (response.ok) draw(await response.json());
  }, 300);
}

function wire() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    drawGate();
    drawAudit();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    drawGate();
    drawAudit();
  });
  for (const button of document.querySelectorAll(".actions button[data-action]")) {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      if (action === "abort" && !window.confirm("Abort the rollout and send all traffic to the champion?")) return;
      act({ action, reason: "from the control room" });
    });
  }
  $("alias-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act({ action: "alias", alias: $("alias-name").value, version: $("alias-version").value.trim() });
  });
  window.addEventListener("resize", () => { if (state) { drawQuality(state); drawDrift(state); } });
  drawGate();
  poll();
}

wire();
