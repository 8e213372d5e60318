/* The manager dashboard: fetch each report's JSON (session auth) and draw it with Chart.js.
 * The shapes are those of SPEC section 9; fields a report may not carry are skipped, never
 * guessed. Errors are shown in the chart's card in words. */
(function () {
  "use strict";

  var COLORS = { brand: "#2f5bea", violet: "#7a5af8", green: "#1a7f45", amber: "#f79009", red: "#b42318", grey: "#98a2b3" };
  var PALETTE = [COLORS.brand, COLORS.violet, COLORS.green, COLORS.amber, COLORS.red, "#0e9384", "#c11574", COLORS.grey];
  var charts = {};
  var params = JSON.parse(document.getElementById("report-params").textContent);
  // Words in the page's language from the server (reports.chart_words, json_script); numbers and
  // dates through Intl in the page's <html lang>. Plural sentences carry one form per CLDR
  // category (Intl.PluralRules), so Romanian's three forms come out right.
  var LANG = document.documentElement.lang || "en";
  var WORDS = JSON.parse((document.getElementById("report-words") || { textContent: "{}" }).textContent || "{}");
  var TEXT = WORDS.text || {}, PLURALS = WORDS.plural || {};
  var STAGE_LABELS = WORDS.stages || {};
  var REASON_LABELS = WORDS.reasons || {};
  var pluralRules = new Intl.PluralRules(LANG);
  function fill(text, values) {
    return String(text).replace(/%\((\w+)\)s/g, function (_, name) {
      return values && values[name] != null ? values[name] : "";
    }).replace(/%%/g, "%");
  }
  function w(key, values) { return fill(TEXT[key] != null ? TEXT[key] : key, values); }
  function wn(key, count, values) {
    var forms = PLURALS[key] || {};
    var text = forms[pluralRules.select(Number(count))] || forms.other || key;
    return fill(text, Object.assign({ count: count }, values || {}));
  }
  function numberFormat(digits, min) {
    return new Intl.NumberFormat(LANG, { minimumFractionDigits: min == null ? digits : min, maximumFractionDigits: digits });
  }
  function shortDate(iso) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(iso || "")) return iso;
    return new Intl.DateTimeFormat(LANG, { day: "numeric", month: "short", timeZone: "UTC" }).format(new Date(iso + "T00:00:00Z"));
  }

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
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json", "Accept-Language": LANG } }).then(function (resp) {
      if (!resp.ok) {
        return resp.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.detail || w("report_answered", { status: resp.status }));
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

  function pct(value) { return value == null ? "–" : w("percent", { value: numberFormat(1).format(value * 100) }); }
  function num(value, digits) { return value == null ? "–" : numberFormat(digits == null ? 1 : digits).format(Number(value)); }
  function setKpi(name, text) {
    var el = document.querySelector('[data-kpi="' + name + '"]');
    if (el) el.textContent = text;
  }
  function fail(key) { return function (err) { setStatus(key, w("could_not_load", { error: err.message })); }; }

  // --- Funnel ------------------------------------------------------------------------------
  function funnel() {
    return fetchReport("funnel").then(function (data) {
      var stages = data.stages || [];
      if (!stages.length) { setStatus("funnel", w("no_stage_entries")); return; }
      draw("funnel", {
        type: "bar",
        data: {
          labels: stages.map(function (s) { return STAGE_LABELS[s.stage] || s.stage; }),
          datasets: [{ label: w("entered"), data: stages.map(function (s) { return s.entered; }), backgroundColor: COLORS.brand }]
        },
        options: {
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { afterLabel: function (ctx) {
              var rate = stages[ctx.dataIndex].to_next_rate;
              return rate == null ? "" : w("to_next_stage", { rate: pct(rate) });
            } } }
          },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
        }
      });
      var rates = stages.filter(function (s) { return s.to_next_rate != null; }).map(function (s) {
        return w("stage_to_next", { stage: STAGE_LABELS[s.stage] || s.stage, rate: pct(s.to_next_rate) });
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
      setKpi("mql", num(data.mql, 0));
      setKpi("sal", num(data.sal, 0));
      setKpi("sql", num(data.sql, 0));
      setKpi("mql_to_sql_rate", pct(data.mql_to_sql_rate));
      setVerdict("efficiency", wn("whole_range", data.mql || 0, {
        count: num(data.mql || 0, 0), rate: pct(data.mql_to_sql_rate), acceptance: pct(data.mql_to_sal_rate), sal_to_sql: pct(data.sal_to_sql_rate)
      }));
    });
    var slices = periods();
    var series = Promise.all(slices.map(function (p) { return fetchReport("efficiency", p); })).then(function (rows) {
      draw("efficiency", {
        type: "line",
        data: {
          labels: slices.map(function (p) { return shortDate(p.from); }),
          datasets: [
            { label: w("mql_to_sql"), data: rows.map(function (r) { return r.mql_to_sql_rate == null ? null : r.mql_to_sql_rate * 100; }), borderColor: COLORS.green, backgroundColor: COLORS.green, tension: 0.2 },
            { label: w("mql_to_sal"), data: rows.map(function (r) { return r.mql_to_sal_rate == null ? null : r.mql_to_sal_rate * 100; }), borderColor: COLORS.brand, backgroundColor: COLORS.brand, tension: 0.2 }
          ]
        },
        options: { scales: { y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: w("cohort_share") } } } }
      });
    });
    return Promise.all([whole, series]).catch(fail("efficiency"));
  }

  // --- Velocity against the SLA line, and the per-rep table ----------------------------------
  function weekLabel(row) { return shortDate(row.week || row.week_start || row.period || row.label || ""); }
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
    var values = { name: name, amount: amount(block.median_hours, hoursPerDay) };
    if (block.sla_hours == null) return w("verdict_median", values);
    values.sla = adjective(block.sla_hours, hoursPerDay);
    if (block.within_sla_rate == null) return w("verdict_sla", values);
    values.rate = pct(block.within_sla_rate);
    return w("verdict_sla_rate", values);
  }
  // Business hours read better as business days once they pass a working day (8 h by default):
  // "median 3.1 days against a 2-day SLA".
  function rounded(value) { return Math.round(value * 10) / 10; }
  function trim(value) { return numberFormat(1, 0).format(rounded(value)); }
  function amount(hours, perDay) {
    perDay = perDay || 8;
    if (hours >= perDay) return wn("days", rounded(hours / perDay), { count: trim(hours / perDay) });
    return wn("hours", rounded(hours), { count: trim(hours) });
  }
  function adjective(hours, perDay) {
    perDay = perDay || 8;
    return hours >= perDay ? wn("sla_days", rounded(hours / perDay), { count: trim(hours / perDay) })
      : wn("sla_hours", rounded(hours), { count: trim(hours) });
  }

  function velocity() {
    return fetchReport("velocity").then(function (data) {
      var decision = data.mql_decision || {};
      var touch = data.sal_first_touch || {};
      setKpi("mql_decision_median", decision.median_hours == null ? "–" : w("hours_short", { value: num(decision.median_hours) }));
      var weeks = data.by_week || [];
      if (weeks.length) {
        var sla = decision.sla_hours;
        var datasets = [
          { type: "bar", label: w("median_decision_hours"), data: weeks.map(decisionMedian), backgroundColor: COLORS.brand },
          { type: "bar", label: w("p90"), data: weeks.map(decisionP90), backgroundColor: "#a9bdf8" }
        ];
        if (sla != null) {
          datasets.push({ type: "line", label: w("sla_line", { value: num(sla) }), data: weeks.map(function () { return sla; }), borderColor: COLORS.red, borderDash: [6, 4], pointRadius: 0, fill: false });
        }
        draw("velocity", {
          type: "bar",
          data: { labels: weeks.map(weekLabel), datasets: datasets },
          options: { scales: { y: { beginAtZero: true, title: { display: true, text: w("business_hours") } } } }
        });
      } else if (decision.median_hours != null) {
        draw("velocity", {
          type: "bar",
          data: {
            labels: [w("mql_to_decision"), w("sal_to_first_touch")],
            datasets: [
              { label: w("median_h"), data: [decision.median_hours, touch.median_hours], backgroundColor: COLORS.brand },
              { label: w("p90_h"), data: [decision.p90_hours, touch.p90_hours], backgroundColor: "#a9bdf8" },
              { label: w("sla_h"), data: [decision.sla_hours, touch.sla_hours], backgroundColor: COLORS.red }
            ]
          },
          options: { scales: { y: { beginAtZero: true } } }
        });
      } else {
        setStatus("velocity", w("no_decisions"));
      }
      var late = decision.median_hours != null && decision.sla_hours != null && decision.median_hours > decision.sla_hours;
      // The report's own words when it gives them (same selector as the API), else ours.
      var decisionText = velocityVerdict(w("mql_decision"), decision);
      if (data.summary) {
        decisionText = decision.within_sla_rate != null
          ? w("summary_rate", { name: w("mql_decision"), summary: data.summary, rate: pct(decision.within_sla_rate) })
          : w("summary", { name: w("mql_decision"), summary: data.summary });
      }
      var parts = [decisionText, velocityVerdict(w("sal_first_touch"), touch)];
      if (data.mql_to_won && data.mql_to_won.median_days != null) {
        parts.push(w("mql_to_won", { amount: wn("days", rounded(data.mql_to_won.median_days), { count: num(data.mql_to_won.median_days) }) }));
      }
      setVerdict("velocity", parts.filter(Boolean).join(" "), late ? "bad" : (decision.median_hours != null ? "good" : ""));
      perRep(data.by_owner || []);
    }).catch(function (err) {
      fail("velocity")(err);
      perRepMessage(w("could_not_load_per_rep", { error: err.message }));
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
    if (!rows.length) { perRepMessage(w("no_rep_decisions")); return; }
    var table = document.getElementById("per-rep-table");
    var columns = [
      [w("rep"), function (r) { return r.owner || r.username || r.name || w("unassigned"); }],
      [w("decisions"), function (r) { return r.count != null ? r.count : (r.decisions != null ? r.decisions : (r.mql_decision && r.mql_decision.count)); }],
      [w("median_h"), function (r) { var v = decisionMedian(r); return v == null ? null : num(v); }],
      [w("p90_h"), function (r) { var v = decisionP90(r); return v == null ? null : num(v); }],
      [w("within_sla"), function (r) {
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
      if (!rows.length) { setStatus("rejections", w("no_rejections")); }
      else {
        draw("rejections", {
          type: "bar",
          data: {
            labels: rows.map(function (r) { return REASON_LABELS[r.reason] || r.reason.replace(/_/g, " "); }),
            datasets: [{ label: w("leads"), data: rows.map(function (r) { return r.count; }), backgroundColor: rows.map(function (_, i) { return PALETTE[i % PALETTE.length]; }) }]
          },
          options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
        });
      }
      var again = data.recycled_more_than_once;
      if (again != null) {
        var n = typeof again === "object" ? (again.count != null ? again.count : (Array.isArray(again) ? again.length : null)) : again;
        if (n != null) setVerdict("rejections", wn("recycled_again", n, { count: num(n, 0) }));
      }
    }).catch(fail("rejections"));
  }

  // --- Commitment --------------------------------------------------------------------------
  function commitment() {
    return fetchReport("commitment").then(function (data) {
      var weeks = data.weeks || data.by_week || [];
      if (!weeks.length) { setStatus("commitment", w("no_commitment")); return; }
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
            { label: w("delivered_cumulative"), data: delivered, borderColor: COLORS.green, backgroundColor: COLORS.green, tension: 0.2 },
            { label: w("promised_prorated"), data: target, borderColor: COLORS.grey, borderDash: [6, 4], pointRadius: 0 }
          ]
        },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
      var promised = data.promised != null ? data.promised : data.target;
      var got = data.delivered != null ? data.delivered : delivered[delivered.length - 1];
      if (!promised) {
        setVerdict("commitment", wn("delivered_no_target", got, { count: num(got, 0) }));
      } else {
        setVerdict("commitment", wn("delivered_against", got, { count: num(got, 0), promised: num(promised, 0) }), got >= promised ? "good" : "bad");
      }
    }).catch(fail("commitment"));
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Chart) {
      document.querySelectorAll("[data-status]").forEach(function (el) { el.textContent = w("no_chart_library"); });
      return;
    }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#475467";
    window.dashboardReady = Promise.all([funnel(), efficiency(), velocity(), rejections(), commitment()]).then(function () {
      document.body.dataset.dashboard = "ready";
    });
  });
})();
