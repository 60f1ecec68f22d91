// The owner's dashboard: renders the state the server pushes as server-sent events.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const kw = (w) => (w === null || w === undefined ? "–" : (w / 1000).toFixed(1) + " kW");
  const kwh = (wh) => (wh / 1000).toFixed(1) + " kWh";
  const hhmm = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZone: tz }) : "–");
  const text = (id, value) => { document.getElementById(id).textContent = value; };
  const tz = document.querySelector('meta[name="site-tz"]').content;
  let lastSamples = -1;
  let lastPlot = 0;

  function cell(row, value, cls) {
    const td = row.insertCell();
    td.textContent = value;
    if (cls) td.className = cls;
    return td;
  }

  function flows(state) {
    const f = state.flows;
    text("now", new Date(state.now).toLocaleString([], { timeZone: tz }));
    text("grid-limit", kw(state.grid_limit_w));
    const warnings = document.getElementById("warnings");
    warnings.replaceChildren(...(state.warnings || []).map((w) => {
      const li = document.createElement("li");
      li.textContent = w;
      return li;
    }));
    if (!f) return;
    text("fl-grid", (f.grid_w >= 0 ? "import " : "export ") + kw(Math.abs(f.grid_w)));
    text("fl-pv", kw(f.pv_w));
    text("fl-building", kw(f.building_w));
    text("fl-ess", (f.ess_w >= 0 ? "out " : "in ") + kw(Math.abs(f.ess_w)));
    text("fl-ev", kw(f.ev_w));
    text("granted", kw(f.granted_w));
    text("grant-reason", state.grant_reason);
    const scale = Math.max(state.grid_limit_w, 1);
    for (const [id, w] of [["grid", f.grid_w], ["pv", f.pv_w], ["building", f.building_w], ["ess", f.ess_w], ["ev", f.ev_w]]) {
      const line = document.getElementById("ln-" + id);
      line.setAttribute("stroke-width", String(2 + 14 * Math.min(Math.abs(w) / scale, 1)));
      line.classList.toggle("active", Math.abs(w) > 50);
    }
  }

  async function act(station, action, output) {
    output.textContent = "asking " + station + "…";
    const body = new FormData();
    body.append("csrf", csrf);
    try {
      const answer = await fetch("/dashboard/stations/" + encodeURIComponent(station) + "/" + action, { method: "POST", body });
      const data = await answer.json();
      output.textContent = answer.ok ? data.action + ": " + JSON.stringify(data.answer) : "error " + answer.status + ": " + JSON.stringify(data.detail);
    } catch (err) {
      output.textContent = "no answer: " + err;
    }
  }

  function stations(state) {
    const body = document.querySelector("#stations tbody");
    for (const s of state.stations) {
      let row = body.querySelector('tr[data-id="' + CSS.escape(s.id) + '"]');
      if (!row) {
        row = body.insertRow();
        row.dataset.id = s.id;
        for (let i = 0; i < 10; i++) row.insertCell();
        const out = document.createElement("output");
        out.setAttribute("aria-live", "polite");
        row.cells[9].appendChild(out);
        for (const [action, label] of [["remote-start", "Start"], ["remote-stop", "Stop"], ["reset", "Reset"], ["unlock", "Unlock"]]) {
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = label;
          b.setAttribute("aria-label", label + " " + s.id);
          b.addEventListener("click", () => act(s.id, action, out));
          row.cells[8].appendChild(b);
        }
        const qr = document.createElement("a");
        qr.href = "/dashboard/stations/" + encodeURIComponent(s.id) + "/qr.svg";
        qr.textContent = "QR";
        qr.setAttribute("aria-label", "QR code of " + s.id + " for drivers");
        row.cells[8].appendChild(qr);
      }
      const values = [s.id, s.connected ? "online" : "offline", s.ocpp_version || "–", s.connectors.join(", "), kw(s.power_w),
        s.limit_text || (s.limit_a === null ? "–" : s.limit_a.toFixed(1) + " A"), s.reason, hhmm(s.last_message)];
      values.forEach((v, i) => { row.cells[i].textContent = v; });
    }
  }

  function sessions(state) {
    const body = document.querySelector("#sessions tbody");
    body.replaceChildren();
    for (const s of state.sessions) {
      const row = body.insertRow();
      cell(row, String(s.id)); cell(row, s.station_id); cell(row, s.id_token || "–"); cell(row, s.state);
      cell(row, kw(s.power_w), "num"); cell(row, kwh(s.energy_wh), "num"); cell(row, kwh(s.needed_wh), "num");
      cell(row, kwh(s.expected_wh), "num"); cell(row, hhmm(s.departure)); cell(row, s.cost, "num");
      const a = document.createElement("a");
      a.href = s.link; a.textContent = "driver page"; a.setAttribute("aria-label", "driver page of session " + s.id);
      const link = row.insertCell();
      link.append(a, " · code " + s.code);
    }
  }

  function past(state) {
    const body = document.querySelector("#past tbody");
    body.replaceChildren();
    for (const s of state.past) {
      const row = body.insertRow();
      const minutes = Math.round(s.duration_s / 60);
      cell(row, String(s.id)); cell(row, s.station_id); cell(row, s.id_token || "–");
      cell(row, kwh(s.energy_wh), "num"); cell(row, Math.floor(minutes / 60) + " h " + (minutes % 60) + " min", "num");
      cell(row, kwh(s.needed_wh), "num"); cell(row, s.needs_met ? "met" : "missed"); cell(row, hhmm(s.stopped_at));
      cell(row, s.billed || "–", "num");
    }
  }

  function circuits(state) {
    const body = document.querySelector("#circuits tbody");
    body.replaceChildren();
    for (const c of state.circuits) {
      const row = body.insertRow();
      cell(row, "\u2003".repeat(c.depth) + c.id);
      cell(row, c.fuse_a.map((a) => a.toFixed(0)).join(" / ") + " A");
      cell(row, c.ev_load_a.map((a) => a.toFixed(1)).join(" / ") + " A");
      cell(row, c.stations.join(", "));
    }
  }

  function render(state) {
    flows(state); stations(state); sessions(state); past(state); circuits(state);
    const now = Date.now();
    if (state.samples !== lastSamples && now - lastPlot > 10000) {
      lastPlot = now;
      const plot = document.getElementById("plot");
      plot.src = "/dashboard/plot.svg?range=" + encodeURIComponent(plot.dataset.range) + "&n=" + state.samples;
    }
    lastSamples = state.samples;
  }

  render(JSON.parse(document.getElementById("initial").textContent));
  const events = new EventSource("/dashboard/events");
  events.addEventListener("state", (e) => { text("live", "live"); render(JSON.parse(e.data)); });
  events.addEventListener("error", () => text("live", "reconnecting…"));
})();
