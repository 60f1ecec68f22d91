// The driver's page: live state of one session, pushed as server-sent events.
"use strict";
(function () {
  const text = (id, value) => { document.getElementById(id).textContent = value; };
  function render(s) {
    text("d-state", s.state_words);
    text("d-power", (s.power_w / 1000).toFixed(1) + " kW" + (s.limit_a !== null ? " (limit " + s.limit_a.toFixed(1) + " A)" : ""));
    text("d-reason", s.reason_words || "–");
    text("d-energy", (s.energy_wh / 1000).toFixed(1) + " kWh");
    text("d-expected", (s.expected_wh / 1000).toFixed(1) + " kWh");
    text("d-cost", s.cost);
    text("d-expected-cost", s.expected_cost);
  }
  render(JSON.parse(document.getElementById("initial").textContent));
  const events = new EventSource(window.location.pathname + "/events" + window.location.search);
  events.addEventListener("state", (e) => render(JSON.parse(e.data)));
})();
