// The command board: polls /api/state every second (docs/board.md says why not SSE) and ticks the
// drill clock in between at the run's scale. Moves go to the desk as the person picked in "I am".
"use strict";
const POLL_MS = 1000;
let state = null, receivedAt = 0, rosterKey = "", failures = 0;
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};

function clockText(s) {
  if (s === null || s === undefined) return "--:--";
  const neg = s < 0; s = Math.abs(Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return (neg ? "-" : "") + (h ? h + ":" + mm : mm) + ":" + ss;
}

// drill seconds now: the state's time moved on by the real time since it arrived, at the scale
function drillNow() {
  if (!state || state.drill.t === null) return null;
  if (state.drill.finished) return state.drill.t;
  return state.drill.t + (Date.now() / 1000 - receivedAt) * state.drill.scale;
}

function me() { return $("me").value; }

function say(text) {
  const m = $("msg");
  m.textContent = text; m.hidden = !text;
  if (text) setTimeout(() => { if (m.textContent === text) m.hidden = true; }, 8000);
}

async function post(url, body) {
  try {
    const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify(body)});
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { say(data.error || ("refused: HTTP " + r.status)); return null; }
    say(""); poll();
    return data;
  } catch (e) { say("the board cannot be reached: " + e); return null; }
}

function move(step, verb, input) {
  const person = me();
  if (!person) { say("pick your name under 'I am' first"); return; }
  const text = input.value.trim();
  const body = {person};
  if (verb === "done" && text) body.note = text;
  if (verb === "block") {
    if (!text) { say("say why the step is blocked in the box beside the buttons"); input.focus(); return; }
    body.reason = text;
  }
  post(`/api/steps/${encodeURIComponent(step)}/${verb}`, body).then((ok) => { if (ok) input.value = ""; });
}

function renderRoster(roster) {
  const key = JSON.stringify(roster);
  if (key === rosterKey) return;
  rosterKey = key;
  const sel = $("me"), keep = sel.value || localStorage.getItem("board.me") || "";
  sel.replaceChildren(el("option", {value: ""}, "— pick your name —"));
  const titles = Object.fromEntries((state.groups || []).map((g) => [g.id, g.title]));
  const groups = {};
  for (const p of roster) (groups[p.group] = groups[p.group] || []).push(p);
  for (const [g, people] of Object.entries(groups)) {
    const og = el("optgroup", {label: `${titles[g] || g} ${g}`});
    for (const p of people) {
      const o = el("option", {value: p.name}, `${p.name} · ${p.tier}${p.role ? " · " + p.role : ""}${p.absent ? " (absent)" : ""}`);
      if (p.absent) o.disabled = true;
      og.append(o);
    }
    sel.append(og);
  }
  sel.append(el("option", {value: "observer"}, "observer (notes only)"));
  if ([...sel.options].some((o) => o.value === keep && !o.disabled)) sel.value = keep;
  const table = $("roster-table");
  table.replaceChildren();
  const head = el("tr");
  for (const h of ["name", "group", "tier", "role", "skills", "location", "phone"]) head.append(el("th", {}, h));
  table.append(head);
  for (const p of roster) {
    const tr = el("tr", {class: p.absent ? "absent" : "", "data-person": p.name});
    for (const v of [p.name + (p.absent ? " (absent)" : ""), titles[p.group] || p.group, p.tier, p.role || "",
                     (p.skills || []).join(", "), p.location || "", p.phone || ""]) tr.append(el("td", {}, v));
    table.append(tr);
  }
}

function stepCard(s) {
  const card = el("div", {class: "step", "data-step": s.id});
  const head = el("div", {class: "head"});
  head.append(el("span", {class: "name"}), el("span", {class: "st"}));
  const input = el("input", {placeholder: "note / why blocked", maxlength: "500", "aria-label": "note or reason"});
  const moves = el("div", {class: "moves"});
  for (const [verb, label] of [["claim", "Claim"], ["done", "Done"], ["block", "Blocked"]]) {
    const b = el("button", {type: "button", "data-move": verb}, label);
    b.addEventListener("click", () => move(s.id, verb, input));
    moves.append(b);
  }
  moves.append(input);
  card.append(head, el("div", {class: "meta who"}), el("div", {class: "meta due"}), moves);
  return card;
}

function renderSteps(steps) {
  const host = $("groups");
  for (const g of state.groups) {
    const mine = steps.filter((s) => s.group === g.id);
    let box = host.querySelector(`.group[data-group="${g.id}"]`);
    if (!mine.length) { if (box) box.remove(); continue; }
    if (!box) { box = el("div", {class: "group", "data-group": g.id}); box.append(el("h3", {}, `${g.title} ${g.id}`)); host.append(box); }
    for (const s of mine) {
      let card = box.querySelector(`.step[data-step="${CSS.escape(s.id)}"]`);
      if (!card) { card = stepCard(s); box.append(card); }
      // the step's lane counts people's time 1:1: its countdown runs in real seconds at any scale
      const final = ["done", "skipped", "failed"].includes(s.status);
      const left = s.left_drill === null || s.left_drill === undefined ? null
        : s.left_drill - (Date.now() / 1000 - receivedAt);
      const overdue = !final && (s.overdue || (left !== null && left < 0));
      card.className = `step ${s.status}${overdue ? " overdue" : ""}`;
      card.querySelector(".name").textContent = `${s.title || s.id} (${s.id})`;
      const st = card.querySelector(".st");
      st.textContent = s.status; st.className = `st st-${s.status}`;
      const who = card.querySelector(".who");
      who.replaceChildren();
      if (s.needs) who.append(`needs ${s.needs} · `);
      if (s.claimed_by) who.append(`claimed by ${s.claimed_by}`);
      else if ((s.owner_candidates || []).length) {
        who.append("next in line: ");
        who.append(el("span", {class: "next"}, s.owner_candidates[0]));
        if (s.owner_candidates.length > 1) who.append(", then " + s.owner_candidates.slice(1, 4).join(", "));
      }
      const due = card.querySelector(".due");
      const at = s.deadline_drill === null || s.deadline_drill === undefined ? "" : ` (deadline T+${clockText(s.deadline_drill)} on the step's clock)`;
      if (!at) due.textContent = s.kind;
      else if (final || left === null) due.textContent = s.kind + at;
      else if (overdue) due.textContent = `OVERDUE by ${clockText(Math.max(0, -left))}${at}`;
      else due.textContent = `${clockText(left)} left${at}`;
      // a blocked step is open again for the next in line (the desk decides; these are hints)
      const can = {claim: ["open", "blocked"].includes(s.status),
                   done: ["claimed", "running", "blocked"].includes(s.status) && s.kind === "manual",
                   block: ["open", "claimed", "running"].includes(s.status)};
      for (const b of card.querySelectorAll("button")) b.disabled = !can[b.dataset.move];
      // a step with no human part (no `needs`, not manual) has no moves to offer
      card.querySelector(".moves").hidden = s.kind !== "manual" && !s.needs;
    }
  }
}

function renderList(id, items, row, empty) {
  const ul = $(id);
  ul.replaceChildren(...(items.length ? items.map(row) : [el("li", {class: "empty"}, empty)]));
}

function renderImpact(imp) {
  const rate = imp.success_rate;
  const s = $("success");
  s.textContent = rate === null ? "—" : (rate * 100).toFixed(1) + "%";
  s.className = "big " + (rate === null ? "" : rate >= 0.98 ? "good" : rate >= 0.8 ? "poor" : "bad");
  $("p95").textContent = imp.p95_ms === null ? "—" : Math.round(imp.p95_ms) + " ms";
  $("requests").textContent = imp.requests;
  $("window").textContent = `requests, last ${imp.window_drill_s}s drill`;
  const pts = imp.history.filter((h) => h.success_rate !== null);
  const svg = $("spark");
  if (pts.length < 2) { svg.replaceChildren(); return; }
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t || 1, span = Math.max(t1 - t0, 1);
  const line = pts.map((h) => `${((h.t - t0) / span * 300).toFixed(1)},${(58 - h.success_rate * 56).toFixed(1)}`).join(" ");
  const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  pl.setAttribute("points", line); pl.setAttribute("fill", "none");
  pl.setAttribute("stroke", "#42a5f5"); pl.setAttribute("stroke-width", "2");
  svg.replaceChildren(pl);
}

function render() {
  const d = state.drill;
  $("phase").textContent = d.phase;
  const sc = $("scale");
  sc.hidden = d.scale === 1;
  sc.textContent = `×${d.scale} drill time: figures at this scale`;
  const banner = $("banner");
  const end = d.halted ? `HALTED: ${d.halted.reason}` : d.finished ? `drill ended (${d.finished.status})` : "";
  banner.textContent = end; banner.hidden = !end;
  renderRoster(state.roster);
  renderImpact(state.impact);
  const myGroup = (state.roster.find((p) => p.name === me()) || {}).group;
  // overdue reminders first: a step past its deadline and who to call for it
  const reminders = [...(state.reminders || [])].reverse().map((r) => ({reminder: r}));
  renderList("alert-list", [...reminders, ...state.alerts], (a) => a.reminder
    ? el("li", {class: `reminder${a.reminder.group === myGroup ? " mine" : ""}`, "data-step": a.reminder.step},
      `T+${clockText(a.reminder.drill)} OVERDUE ${a.reminder.step} (${a.reminder.group}): waiting for a ` +
      `${a.reminder.waiting}${a.reminder.claimed_by ? " by " + a.reminder.claimed_by : ""}` +
      `${a.reminder.call.length ? "; call " + a.reminder.call.join(", ") : ""}`)
    : el("li", {class: `sev-${a.severity}${a.active ? "" : " cleared"}`},
      `T+${clockText(a.raised_drill)} ${a.alert} (${a.severity}${a.active ? "" : ", cleared"}) ${a.describe || ""}`), "none");
  renderList("inject-list", [...state.injects].reverse(), (i) => el("li",
    {class: i.to === "all" || i.to === myGroup ? "mine" : "", "data-inject": i.inject},
    `T+${clockText(i.drill)} → ${i.to}: ${i.text}`), "none yet");
  renderList("note-list", [...state.notes].reverse(), (n) => el("li", {},
    `${n.drill !== undefined && n.drill !== null ? "T+" + clockText(n.drill) + " " : ""}${n.by}: ${n.text}`), "no notes yet");
  renderSteps(state.steps);
}

async function poll() {
  try {
    const r = await fetch("/api/state", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    state = await r.json(); receivedAt = Date.now() / 1000; failures = 0;
    render();
  } catch (e) {
    if (++failures >= 3) { const b = $("banner"); b.textContent = "board offline: the drill has ended or cannot be reached"; b.hidden = false; }
  }
}

$("me").addEventListener("change", () => { localStorage.setItem("board.me", me()); if (state) render(); });
$("note-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("note-text").value.trim();
  if (!text) { say("write the note first"); return; }
  post("/api/notes", {by: me() || "observer", text}).then((ok) => { if (ok) $("note-text").value = ""; });
});
$("halt").addEventListener("click", () => { $("halt-confirm").hidden = false; $("halt").hidden = true; });
$("halt-confirm").addEventListener("click", () => {
  post("/api/halt", {by: me() || "board", reason: $("halt-reason").value.trim() || "halt pressed on the command board"})
    .then((ok) => { if (ok) say("halt requested: every fault is being reverted"); });
  $("halt-confirm").hidden = true; $("halt").hidden = false;
});
setInterval(() => { if (state) $("clock").textContent = "T+" + clockText(drillNow()); }, 200);
setInterval(() => { if (state) render(); }, 1000 / 2);
poll();
setInterval(poll, POLL_MS);
