/* The manager dashboard: fetch each report's JSON (session auth) and draw it with Chart.js.
 * The shapes are those of SPEC section 9; fields a report may not carry are skipped, never
 * guessed. Errors are shown in the chart's card in words. */
(function () {
  "use strict";

  var COLORS = { brand: "#2f5bea", violet: "#7a5af8", green: "#1a7f45", amber: "#f79009", red: "#b42318", grey: "#98a2b3" };
  var PALETTE = [COLORS.brand, COLORS.violet, COLORS.green, COLORS.amber, COLORS.red, "#0e9384", "#c11574", COLORS.grey];
  var STAGE_LABELS = { lead: "Lead", mql: "MQL", sal: "SAL", sql: "SQL", won: "Won", lost: "Lost", recycled: "Recycled", disqualified: "Disqualified" };
  var charts = {};
  var params = JSON.parse(document.getElementById("report-params").textContent);

  function qs(extra) {
    var search = new URLSearchParams(params);
    Object.keys(extra || {}).forEach(function (k) { search.set(k, extra[k]); });
    return search.toString();
  }

  function card(key) { return document.getElementById("chart-" + key); }

  function setStatus(key, text) {
    var el = card(key).querySelector("[data-status]");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function setVerdict(key, text, tone) {
    var el = card(key).querySelector("[data-verdict]");
    el.textContent = text || "";
    el.className = "verdict" + (tone ? " " + tone : "");
  }

  function fetchReport(key, extra) {
    var url = card(key).dataset.endpoint + "?" + qs(extra);
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (resp) {
      if (!resp.ok) {
        return resp.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.detail || ("the report answered " + resp.status));
        });
      }
      return resp.json();
    });
  }

  function draw(key, config) {
    if (charts[key]) charts[key].destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[key] = new window.Chart(card(key).querySelector("canvas"), config);
    setStatus(key, "");
  }

  function pct(value) { return value == null ? "–" : (value * 100).toFixed(1) + " %"; }
  function num(value, digits) { return value == null ? "–" : Number(value).toFixed(digits == null ? 1 : digits); }
  function setKpi(name, text) {
    var el = document.querySelector('[data-kpi="' + name + '"]');
    if (el) el.textContent = text;
  }
  function fail(key) { return function (err) { setStatus(key, "Could not load this report: " + err.message); }; }

  // --- Funnel ------------------------------------------------------------------------------
  function funnel() {
    return fetchReport("funnel").then(function (data) {
      var stages = data.stages || [];
      if (!stages.length) { setStatus("funnel", "No stage entries in this range."); return; }
      draw("funnel", {
        type: "bar",
        data: {
          labels: stages.map(function (s) { return STAGE_LABELS[s.stage] || s.stage; }),
          datasets: [{ label: "Entered", data: stages.map(function (s) { return s.entered; }), backgroundColor: COLORS.brand }]
        },
        options: {
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { afterLabel: function (ctx) {
              var rate = stages[ctx.dataIndex].to_next_rate;
              return rate == null ? "" : "to next stage: " + pct(rate);
            } } }
          },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
        }
      });
      var rates = stages.filter(function (s) { return s.to_next_rate != null; }).map(function (s) {
        return (STAGE_LABELS[s.stage] || s.stage) + " → next " + pct(s.to_next_rate);
      });
      setVerdict("funnel", rates.join(" · "));
    }).catch(fail("funnel"));
  }

  // --- Efficiency over time: one cohort per period of the range ------------------------------
  function periods() {
    var start = new Date(params.from + "T00:00:00Z"), end = new Date(params.to + "T00:00:00Z");
    var days = Math.round((end - start) / 86400000) + 1;
    var step = days <= 56 ? 7 : days <= 190 ? 30 : 91;
    var out = [];
    for (var t = start.getTime(); t <= end.getTime() && out.length < 12; t += step * 86400000) {
      var from = new Date(t), to = new Date(Math.min(t + (step - 1) * 86400000, end.getTime()));
      out.push({ from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) });
    }
    return out;
  }

  function efficiency() {
    var whole = fetchReport("efficiency").then(function (data) {
      setKpi("mql", data.mql == null ? "–" : data.mql);
      setKpi("sal", data.sal == null ? "–" : data.sal);
      setKpi("sql", data.sql == null ? "–" : data.sql);
      setKpi("mql_to_sql_rate", pct(data.mql_to_sql_rate));
      setVerdict("efficiency", "Whole range: " + pct(data.mql_to_sql_rate) + " of " + (data.mql || 0) +
        " MQLs reached SQL (acceptance " + pct(data.mql_to_sal_rate) + ", SAL → SQL " + pct(data.sal_to_sql_rate) + ").");
    });
    var slices = periods();
    var series = Promise.all(slices.map(function (p) { return fetchReport("efficiency", p); })).then(function (rows) {
      draw("efficiency", {
        type: "line",
        data: {
          labels: slices.map(function (p) { return p.from; }),
          datasets: [
            { label: "MQL → SQL", data: rows.map(function (r) { return r.mql_to_sql_rate == null ? null : r.mql_to_sql_rate * 100; }), borderColor: COLORS.green, backgroundColor: COLORS.green, tension: 0.2 },
            { label: "MQL → SAL (accepted)", data: rows.map(function (r) { return r.mql_to_sal_rate == null ? null : r.mql_to_sal_rate * 100; }), borderColor: COLORS.brand, backgroundColor: COLORS.brand, tension: 0.2 }
          ]
        },
        options: { scales: { y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: "% of the period's MQL cohort" } } } }
      });
    });
    return Promise.all([whole, series]).catch(fail("efficiency"));
  }

  // --- Velocity against the SLA line, and the per-rep table ----------------------------------
  function weekLabel(row) { return row.week || row.week_start || row.period || row.label || ""; }
  function decisionMedian(row) {
    if (row.mql_decision && row.mql_decision.median_hours != null) return row.mql_decision.median_hours;
    if (row.mql_decision_median_hours != null) return row.mql_decision_median_hours;
    return row.median_hours == null ? null : row.median_hours;
  }
  function decisionP90(row) {
    if (row.mql_decision && row.mql_decision.p90_hours != null) return row.mql_decision.p90_hours;
    if (row.mql_decision_p90_hours != null) return row.mql_decision_p90_hours;
    return row.p90_hours == null ? null : row.p90_hours;
  }

  function velocityVerdict(name, block, hoursPerDay) {
    if (!block || block.median_hours == null) return "";
    var text = name + ": median " + amount(block.median_hours, hoursPerDay);
    if (block.sla_hours != null) {
      text += " against a " + adjective(block.sla_hours, hoursPerDay) + " SLA";
      if (block.within_sla_rate != null) text += ", " + pct(block.within_sla_rate) + " within SLA";
    }
    return text + ".";
  }
  // Business hours read better as business days once they pass a working day (8 h by default):
  // "median 3.1 days against a 2-day SLA".
  function trim(value) { return num(value, 1).replace(/\.0$/, ""); }
  function amount(hours, perDay) {
    perDay = perDay || 8;
    if (hours >= perDay) { var d = trim(hours / perDay); return d + (d === "1" ? " day" : " days"); }
    var h = trim(hours);
    return h + (h === "1" ? " hour" : " hours");
  }
  function adjective(hours, perDay) {
    perDay = perDay || 8;
    return hours >= perDay ? trim(hours / perDay) + "-day" : trim(hours) + "-hour";
  }

  function velocity() {
    return fetchReport("velocity").then(function (data) {
      var decision = data.mql_decision || {};
      var touch = data.sal_first_touch || {};
      setKpi("mql_decision_median", decision.median_hours == null ? "–" : num(decision.median_hours) + " h");
      var weeks = data.by_week || [];
      if (weeks.length) {
        var sla = decision.sla_hours;
        var datasets = [
          { type: "bar", label: "Median hours to accept/reject", data: weeks.map(decisionMedian), backgroundColor: COLORS.brand },
          { type: "bar", label: "90th percentile", data: weeks.map(decisionP90), backgroundColor: "#a9bdf8" }
        ];
        if (sla != null) {
          datasets.push({ type: "line", label: "SLA (" + num(sla) + " h)", data: weeks.map(function () { return sla; }), borderColor: COLORS.red, borderDash: [6, 4], pointRadius: 0, fill: false });
        }
        draw("velocity", {
          type: "bar",
          data: { labels: weeks.map(weekLabel), datasets: datasets },
          options: { scales: { y: { beginAtZero: true, title: { display: true, text: "business hours" } } } }
        });
      } else if (decision.median_hours != null) {
        draw("velocity", {
          type: "bar",
          data: {
            labels: ["MQL → decision", "SAL → first touch"],
            datasets: [
              { label: "Median (h)", data: [decision.median_hours, touch.median_hours], backgroundColor: COLORS.brand },
              { label: "90th percentile (h)", data: [decision.p90_hours, touch.p90_hours], backgroundColor: "#a9bdf8" },
              { label: "SLA (h)", data: [decision.sla_hours, touch.sla_hours], backgroundColor: COLORS.red }
            ]
          },
          options: { scales: { y: { beginAtZero: true } } }
        });
      } else {
        setStatus("velocity", "No MQL decisions in this range.");
      }
      var late = decision.median_hours != null && decision.sla_hours != null && decision.median_hours > decision.sla_hours;
      // The report's own words when it gives them (same selector as the API), else ours.
      var decisionText = velocityVerdict("MQL decision", decision);
      if (data.summary) {
        decisionText = "MQL decision: " + data.summary +
          (decision.within_sla_rate != null ? ", " + pct(decision.within_sla_rate) + " within SLA" : "") + ".";
      }
      var parts = [decisionText, velocityVerdict("SAL first touch", touch)];
      if (data.mql_to_won && data.mql_to_won.median_days != null) parts.push("MQL → won: median " + num(data.mql_to_won.median_days) + " days.");
      setVerdict("velocity", parts.filter(Boolean).join(" "), late ? "bad" : (decision.median_hours != null ? "good" : ""));
      perRep(data.by_owner || []);
    }).catch(function (err) {
      fail("velocity")(err);
      perRepMessage("Could not load the per-rep figures: " + err.message);
    });
  }

  function perRepMessage(text) {
    var table = document.getElementById("per-rep-table");
    table.tHead.innerHTML = "";
    table.tBodies[0].innerHTML = "";
    var row = table.tBodies[0].insertRow(), cell = row.insertCell();
    cell.className = "muted";
    cell.textContent = text;
  }

  function perRep(rows) {
    if (!rows.length) { perRepMessage("No decisions by any rep in this range."); return; }
    var table = document.getElementById("per-rep-table");
    var columns = [
      ["Rep", function (r) { return r.owner || r.username || r.name || "unassigned"; }],
      ["Decisions", function (r) { return r.count != null ? r.count : (r.decisions != null ? r.decisions : (r.mql_decision && r.mql_decision.count)); }],
      ["Median h", function (r) { var v = decisionMedian(r); return v == null ? null : num(v); }],
      ["P90 h", function (r) { var v = decisionP90(r); return v == null ? null : num(v); }],
      ["Within SLA", function (r) {
        var v = r.within_sla_rate != null ? r.within_sla_rate : (r.mql_decision && r.mql_decision.within_sla_rate);
        return v == null ? null : pct(v);
      }]
    ];
    table.tHead.innerHTML = "";
    var head = table.tHead.insertRow();
    columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c[0]; head.appendChild(th); });
    var body = table.tBodies[0];
    body.innerHTML = "";
    rows.forEach(function (r) {
      var tr = body.insertRow();
      columns.forEach(function (c, i) {
        var td = tr.insertCell();
        var v = c[1](r);
        td.textContent = v == null || v === undefined ? "–" : v;
        if (i) td.className = "num";
      });
    });
  }

  // --- Rejections --------------------------------------------------------------------------
  function rejectionRows(data) {
    var rows = data.by_reason || data.reasons || data.rows || [];
    if (!Array.isArray(rows)) {
      rows = Object.keys(rows).map(function (k) { return { reason: k, count: rows[k] }; });
    }
    var totals = {};
    rows.forEach(function (r) {
      var key = r.reason || r.reason_code || "unknown";
      totals[key] = (totals[key] || 0) + (r.count != null ? r.count : (r.total || 0));
    });
    return Object.keys(totals).map(function (k) { return { reason: k, count: totals[k] }; })
      .sort(function (a, b) { return b.count - a.count; });
  }

  function rejections() {
    return fetchReport("rejections").then(function (data) {
      var rows = rejectionRows(data);
      if (!rows.length) { setStatus("rejections", "No rejections or recycling in this range."); }
      else {
        draw("rejections", {
          type: "bar",
          data: {
            labels: rows.map(function (r) { return r.reason.replace(/_/g, " "); }),
            datasets: [{ label: "Leads", data: rows.map(function (r) { return r.count; }), backgroundColor: rows.map(function (_, i) { return PALETTE[i % PALETTE.length]; }) }]
          },
          options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
        });
      }
      var again = data.recycled_more_than_once;
      if (again != null) {
        var n = typeof again === "object" ? (again.count != null ? again.count : (Array.isArray(again) ? again.length : null)) : again;
        if (n != null) setVerdict("rejections", n + " lead" + (n === 1 ? "" : "s") + " recycled more than once.");
      }
    }).catch(fail("rejections"));
  }

  // --- Commitment --------------------------------------------------------------------------
  function commitment() {
    return fetchReport("commitment").then(function (data) {
      var weeks = data.weeks || data.by_week || [];
      if (!weeks.length) { setStatus("commitment", "No quarterly target or deliveries in this range."); return; }
      var cumulative = 0;
      var delivered = weeks.map(function (w) {
        if (w.cumulative_delivered != null) return w.cumulative_delivered;
        cumulative += w.delivered || 0;
        return cumulative;
      });
      var target = weeks.map(function (w) {
        var v = w.cumulative_target != null ? w.cumulative_target : (w.prorated_target != null ? w.prorated_target : w.target);
        return v == null ? null : v;
      });
      draw("commitment", {
        type: "line",
        data: {
          labels: weeks.map(weekLabel),
          datasets: [
            { label: "Delivered (cumulative)", data: delivered, borderColor: COLORS.green, backgroundColor: COLORS.green, tension: 0.2 },
            { label: "Promised (prorated)", data: target, borderColor: COLORS.grey, borderDash: [6, 4], pointRadius: 0 }
          ]
        },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
      var promised = data.promised != null ? data.promised : data.target;
      var got = data.delivered != null ? data.delivered : delivered[delivered.length - 1];
      if (!promised) {
        setVerdict("commitment", got + " delivered; no quarterly target is set for this range (admin: quarterly targets).");
      } else {
        setVerdict("commitment", got + " delivered against " + num(promised, 0) + " promised by now.", got >= promised ? "good" : "bad");
      }
    }).catch(fail("commitment"));
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Chart) {
      document.querySelectorAll("[data-status]").forEach(function (el) { el.textContent = "The charting library did not load."; });
      return;
    }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#475467";
    window.dashboardReady = Promise.all([funnel(), efficiency(), velocity(), rejections(), commitment()]).then(function () {
      document.body.dataset.dashboard = "ready";
    });
  });
})();
