/* LeadFlow page behaviour: live SLA countdowns and a visible message when a request fails. */
(function () {
  "use strict";

  // The words in the page's language, rendered by the server (base.html, json_script).
  var words = null;
  function t(key, values) {
    if (words === null) {
      var node = document.getElementById("leadflow-strings");
      try { words = node ? JSON.parse(node.textContent) : {}; } catch (e) { words = {}; }
    }
    var text = words[key] || key;
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return values && name in values ? values[name] : ""; });
  }

  function span(seconds) {
    var minutes = Math.floor(Math.max(0, seconds) / 60);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return t("days", { days: days, hours: hours });
    if (hours) return t("hours", { hours: hours, minutes: (mins < 10 ? "0" : "") + mins });
    return t("minutes", { minutes: mins });
  }

  // Same words and colours as the server renders; kept current without reloading the page.
  function tick(root) {
    var now = Date.now();
    (root || document).querySelectorAll(".sla[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) return;
      var warn = el.dataset.warn ? Date.parse(el.dataset.warn) : NaN;
      var left = Math.round((due - now) / 1000);
      el.textContent = left >= 0 ? t("left", { span: span(left) }) : t("overdue", { span: span(-left) });
      var state = left < 0 ? "breached" : (!isNaN(warn) && now >= warn) || el.classList.contains("sla-warning") ? "warning" : "ok";
      el.classList.remove("sla-ok", "sla-warning", "sla-breached");
      el.classList.add("sla-" + state);
    });
  }

  function showError(text) {
    var box = document.getElementById("net-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 30000);
  });
  document.addEventListener("htmx:afterSettle", function () { tick(document); });
  // A lead list's filter applies as soon as it is chosen: the form submits itself, and htmx
  // swaps the results and pushes the URL (the search box has its own delayed trigger).
  document.addEventListener("change", function (evt) {
    var form = evt.target.closest && evt.target.closest("form.filters[hx-get]");
    if (form && evt.target.tagName === "SELECT") form.requestSubmit();
  });
  // A refused action (400 invalid, 403 not allowed, 409 taken by someone else) comes back as the
  // same fragment with the reason in words: swap it in like a success. Anything else that fails
  // (a 404 page, a 500) stays out of the page and raises the banner instead.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("X-LeadFlow-Fragment")) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });
  document.addEventListener("htmx:responseError", function (evt) {
    showError(t("responseError", { status: evt.detail.xhr.status }));
  });
  document.addEventListener("htmx:sendError", function () {
    showError(t("sendError"));
  });
  // The language picker changes as soon as a language is chosen; its button stays for no-JS use.
  document.addEventListener("change", function (evt) {
    if (evt.target.matches && evt.target.matches("select[data-autosubmit]")) evt.target.form.submit();
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("net-error");
    if (box) box.hidden = true;
  });
})();
