"use strict";
// The live page: every few seconds, /live.json drawn with textContent only (never HTML).
(function () {
  const EVERY_MS = 2000;
  const $ = (id) => document.getElementById(id);
  const text = (id, v) => { $(id).textContent = v === null || v === undefined ? "-" : String(v); };

  function table(id, head, rows, empty) {
    const t = $(id);
    t.replaceChildren();
    if (!rows.length) {
      const tr = t.insertRow();
      const td = tr.insertCell();
      td.className = "empty";
      td.textContent = empty;
      return;
    }
    const hr = t.createTHead().insertRow();
    for (const h of head) {
      const th = document.createElement("th");
      th.textContent = h;
      hr.appendChild(th);
    }
    const body = t.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      for (const cell of r) {
        const td = tr.insertCell();
        td.textContent = cell === null || cell === undefined ? "-" : String(cell);
        if (typeof cell === "number") td.className = "n";
      }
    }
  }

  function draw(v) {
    text("campaign", v.campaign);
    text("state", (v.running ? "running" : "not running") + (v.control !== "active" ? ", " + v.control : ""));
    text("updated", v.generated_at);
    const p = v.progress;
    text("progress", p.done + " / " + p.planned + " (" + p.percent + "%)");
    $("progress-bar").style.width = Math.min(100, Math.max(0, p.percent)) + "%";
    text("live-calls", v.live_calls + " / " + v.max_live_calls);
    text("calls-placed", v.calls_placed);
    text("pace", v.pace.last_minute_per_second.toFixed(2) + " (" + v.pace.configured_per_second + ")");
    text("conversions", v.outcomes.conversions);
    text("next-window", v.next_window_at || "-");
    const waiting = Object.entries(p.waiting).map(([k, n]) => k + " " + n).join(", ");
    table("rows", ["fate", "rows", "waiting for"],
      Object.entries(p.by_disposition).map(([d, n]) => [d, n, d === "pending" ? waiting : ""]),
      "no rows yet");
    const outs = Object.entries(v.outcomes.by_status).map(([s, n]) => ["status", s, n])
      .concat(Object.entries(v.outcomes.by_outcome).map(([o, n]) => ["outcome", o, n]));
    table("outcomes", ["kind", "value", "calls"], outs, "no call has ended yet");
    table("caller-ids", ["number id", "last hour", "last 24 h", "this run"],
      v.caller_ids.map((n) => [n.number_id,
        n.max_per_hour ? n.last_hour + " / " + n.max_per_hour : n.last_hour,
        n.max_per_day ? n.last_24h + " / " + n.max_per_day : n.last_24h, n.this_run]),
      "no call yet");
    const b = v.budget;
    table("budget", ["limit", "spent", "with live calls", "left"],
      b ? b.limits.map((l) => [l.key + " " + l.limit, l.spent, l.committed, l.left]) : [],
      "no [budget] in the campaign file");
    table("errors", ["row", "attempt", "code", "message"],
      v.errors.map((e) => [e.row, e.attempt, e.code, e.message]), "none");
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
    text("stale", "");
  }

  async function tick() {
    try {
      const r = await fetch("live.json", { cache: "no-store" });
      if (r.ok) draw(await r.json());
      else text("stale", "(the run answered " + r.status + ")");
    } catch (e) {
      text("stale", "(the run is not answering: ended?)");
    }
    setTimeout(tick, EVERY_MS);
  }
  tick();
})();
