// The operator's page: polls /console/api/overview, follows the change events, and runs
// the lookups. Text goes in with textContent only, never as HTML.
"use strict";

const POLL_INTERVAL_MS = 2000;
const CHART_WINDOW_S = 300;
const EVENTS_SHOWN = 50;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function fillRows(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = el("tr");
    for (const cell of cells) {
      const td = typeof cell === "object" && cell !== null ? el("td", cell.text, cell.cls) : el("td", cell);
      tr.append(td);
    }
    return tr;
  }));
}

function fillList(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v, cls]) => [el("dt", k), el("dd", v, cls)]));
}

function num(value) {
  return { text: value === null || value === undefined ? "–" : Number(value).toLocaleString("en"), cls: "num" };
}

function ident(value) {
  return { text: String(value), cls: "num" };
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "none";
  if (seconds < 120) return seconds.toFixed(1) + " s";
  return (seconds / 60).toFixed(1) + " min";
}

function stateClass(text) {
  if (/^(ok|serving|leads|follower)/i.test(text)) return "ok";
  if (/^degraded/i.test(text)) return "warn";
  return "bad";
}

function markLive(id) {
  document.getElementById(id).dataset.live = "true";
}

function showError(panel, answer) {
  const message = answer && answer.error;
  const p = document.getElementById(panel + "-error");
  if (p) { p.hidden = !message; p.textContent = message || ""; }
  return Boolean(message);
}

function drawChart(svg, points, key) {
  const now = Date.now() / 1000;
  const recent = points.filter((p) => p.at_s >= now - CHART_WINDOW_S);
  const max = Math.max(1, ...recent.map((p) => p[key]));
  const coords = recent.map((p) => {
    const x = 300 - ((now - p.at_s) / CHART_WINDOW_S) * 300;
    const y = 78 - (p[key] / max) * 74;
    return x.toFixed(1) + "," + y.toFixed(1);
  });
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  const top = document.createElementNS("http://www.w3.org/2000/svg", "text");
  top.setAttribute("x", "2");
  top.setAttribute("y", "10");
  top.setAttribute("font-size", "9");
  top.textContent = "max " + max.toLocaleString("en");
  svg.replaceChildren(line, top);
  svg.dataset.points = String(recent.length);
}

function render(o) {
  const status = document.getElementById("status");
  status.textContent = o.health.status;
  status.className = "badge " + (o.health.status === "SERVING" ? "ok" : "bad");
  document.getElementById("process").textContent =
    "pid " + o.process.pid + " · roles " + o.process.roles.join(", ") + " · " + o.process.partitions + " partitions";
  document.getElementById("updated").textContent = "updated " + new Date(o.process.now_ms).toLocaleTimeString();

  fillRows(document.getElementById("health"), Object.entries(o.health.components).sort()
    .map(([name, state]) => [name, { text: state, cls: stateClass(state) }]));
  markLive("health-panel");

  if (!showError("partitions", o.partitions)) {
    fillRows(document.getElementById("partitions"), o.partitions.rows.map((p) => [
      num(p.partition), p.owner + (p.paused ? " (paused)" : ""), num(p.committed_offset),
      num(p.end_offset), { text: num(p.lag).text, cls: "num" + (p.lag > 0 ? " warn" : "") },
      num(p.applied_per_s),
    ]));
    markLive("partitions-panel");
  }

  const outbox = o.outbox;
  if (outbox.error) fillList(document.getElementById("outbox"), [["error", outbox.error, "error"]]);
  else {
    fillList(document.getElementById("outbox"), [
      ["backlog", outbox.backlog.toLocaleString("en")],
      ["pending", outbox.pending.toLocaleString("en")],
      ["sent", outbox.sent.toLocaleString("en")],
      ["failed", outbox.failed.toLocaleString("en"), outbox.failed ? "bad" : ""],
      ["oldest unfinished", age(outbox.oldest_unfinished_age_s)],
    ]);
    markLive("outbox-panel");
  }

  const dlq = o.dlq;
  if (dlq.error) fillList(document.getElementById("dlq"), [["error", dlq.error, "error"]]);
  else {
    fillList(document.getElementById("dlq"), [["topic", dlq.topic], ["messages", dlq.size.toLocaleString("en"), dlq.size ? "bad" : "ok"]]);
    fillRows(document.getElementById("dlq-latest"), dlq.latest.map((d) => [num(d.partition), num(d.offset), d.reason, d.error]));
    markLive("dlq-panel");
  }

  document.getElementById("locks-none").hidden = o.leader_locks.length > 0;
  fillRows(document.getElementById("locks"), o.leader_locks.map((l) => [
    l.name, { text: l.holder, cls: l.held_here ? "ok" : "" }, num(l.epoch),
  ]));
  markLive("locks-panel");

  const audit = o.audit;
  fillList(document.getElementById("audit"), audit.ran ? [
    ["result", audit.ok ? "ok" : audit.problems + " problems", audit.ok ? "ok" : "bad"],
    ["finished", new Date(audit.last_run_unix_s * 1000).toLocaleString()],
    ["transfers in flight", String(audit.transfers_in_flight)],
  ] : [["result", "not run by this process (the outbox lock's holder audits)"]]);
  markLive("audit-panel");

  const history = o.history || [];
  drawChart(document.getElementById("rate-chart"), history, "applied_per_s");
  drawChart(document.getElementById("lag-chart"), history, "lag");
  const last = history[history.length - 1];
  document.getElementById("rate-now").textContent = last ? "now " + last.applied_per_s.toLocaleString("en") : "";
  document.getElementById("lag-now").textContent = last ? "now " + last.lag.toLocaleString("en") : "";
  markLive("charts-panel");
}

async function poll() {
  if (!document.hidden) {
    try {
      const response = await fetch("/console/api/overview", { cache: "no-store" });
      if (response.ok) render(await response.json());
      else document.getElementById("status").textContent = "overview: HTTP " + response.status;
    } catch (error) {
      document.getElementById("status").textContent = "unreachable";
      document.getElementById("status").className = "badge bad";
    }
  }
  setTimeout(poll, POLL_INTERVAL_MS);
}

function table(headers, rows) {
  const t = el("table");
  const head = el("thead");
  const tr = el("tr");
  for (const h of headers) tr.append(el("th", h));
  head.append(tr);
  t.append(head, el("tbody"));
  fillRows(t, rows);
  return t;
}

function fields(object, keys) {
  const dl = el("dl");
  fillList(dl, keys.filter((k) => object[k] !== null && object[k] !== undefined && object[k] !== "")
    .map((k) => [k.replaceAll("_", " "), typeof object[k] === "object" ? JSON.stringify(object[k]) : String(object[k])]));
  return dl;
}

function balanceRows(balances) {
  return balances.filter(Boolean).map((b) => [ident(b.user_id), b.currency, { text: b.available, cls: "num" }, { text: b.frozen, cls: "num" }, num(b.version)]);
}

const BALANCE_HEADERS = ["user", "currency", "available", "frozen", "version"];

const LOOKUPS = {
  "account-form": {
    path: "account",
    show(a) {
      return [
        el("h3", "balances of user " + a.user_id),
        table(BALANCE_HEADERS, balanceRows(a.balances)),
        el("h3", "recent journal"),
        table(["applied", "request id", "currency", "type", "amount", "available", "frozen", "version", "memo"],
          a.journal.map((e) => [new Date(e.applied_at_ms).toLocaleString(), e.request_id, e.currency, e.type,
            { text: e.amount, cls: "num" }, { text: e.available_after, cls: "num" }, { text: e.frozen_after, cls: "num" }, num(e.version), e.memo])),
      ];
    },
  },
  "request-form": {
    path: "request",
    show(r) {
      const parts = [el("h3", "request " + r.request_id),
        fields(r, ["status", "reject_reason", "type", "user_id", "currency", "amount", "memo", "transfer_id"])];
      if (r.balance_after) parts.push(el("h3", "balance after"), table(BALANCE_HEADERS, balanceRows([r.balance_after])));
      return parts;
    },
  },
  "transfer-form": {
    path: "transfer",
    show(t) {
      return [el("h3", "transfer " + t.transfer_id),
        fields(t, ["status", "reject_reason", "from_user_id", "to_user_id", "currency", "amount", "memo", "debited"]),
        el("h3", "balances after"), table(BALANCE_HEADERS, balanceRows([t.from_balance, t.to_balance]))];
    },
  },
};

function setUpLookups() {
  const result = document.getElementById("lookup-result");
  for (const [id, lookup] of Object.entries(LOOKUPS)) {
    document.getElementById(id).addEventListener("submit", async (event) => {
      event.preventDefault();
      const query = new URLSearchParams(new FormData(event.target));
      result.dataset.state = "loading";
      try {
        const response = await fetch("/console/api/" + lookup.path + "?" + query, { cache: "no-store" });
        const answer = await response.json();
        if (response.ok) result.replaceChildren(...lookup.show(answer));
        else result.replaceChildren(el("p", answer.error || "HTTP " + response.status, "error"));
      } catch (error) {
        result.replaceChildren(el("p", "lookup failed: " + error, "error"));
      }
      result.dataset.state = "done";
      result.dataset.lookup = lookup.path;
    });
  }
}

function followEvents() {
  const state = document.getElementById("events-state");
  const body = document.getElementById("events").tBodies[0];
  const source = new EventSource("/console/api/events");
  source.addEventListener("ready", () => {
    state.textContent = "live";
    document.getElementById("events-panel").dataset.live = "true";
  });
  source.addEventListener("change", (message) => {
    const e = JSON.parse(message.data);
    const tr = el("tr");
    for (const cell of [new Date(Number(e.applied_at_unix_ms)).toLocaleTimeString(), num(e.partition), e.request_id,
      ident(e.user_id), e.currency, e.type, { text: e.amount, cls: "num" }, { text: e.available_after, cls: "num" },
      { text: e.frozen_after, cls: "num" }, num(e.version), e.memo]) {
      tr.append(typeof cell === "object" ? el("td", cell.text, cell.cls) : el("td", cell));
    }
    body.prepend(tr);
    while (body.rows.length > EVENTS_SHOWN) body.deleteRow(body.rows.length - 1);
  });
  source.addEventListener("failed", (message) => { state.textContent = "ended: " + message.data; source.close(); });
  source.addEventListener("error", () => { state.textContent = "reconnecting…"; });
}

setUpLookups();
followEvents();
poll();
