// Otklik operator UI: ticking deadline countdowns, live inbox updates, filling the reply box.
(function () {
  "use strict";
  var body = document.body;
  // Deadlines are computed against the server's clock, not the workstation's.
  var offset = Date.parse(body.dataset.now) - Date.now();
  var warnMs = Number(body.dataset.warn || 1800) * 1000;

  function duration(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return days + " д " + hours + " ч";
    if (hours) return hours + " ч " + String(mins).padStart(2, "0") + " мин";
    return mins + " мин";
  }

  function tick() {
    var now = Date.now() + offset;
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var left = Date.parse(el.dataset.due) - now;
      var state = left < 0 ? "breached" : left <= warnMs ? "warn" : "ok";
      el.textContent = left < 0 ? "просрочено на " + duration(left) : "осталось " + duration(left);
      el.classList.remove("ok", "warn", "breached");
      el.classList.add(state);
      var row = el.closest("tr");
      if (row) row.className = "row-" + state;
    });
  }
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);

  // Live inbox: every change in the audit log (any process) refreshes the queue.
  var queue = document.getElementById("queue");
  if (queue && queue.dataset.events && window.EventSource) {
    var live = document.getElementById("live");
    var pending = null;
    var source = new EventSource(queue.dataset.events);
    source.addEventListener("audit", function (e) {
      var data = JSON.parse(e.data);
      if (live && data.kind === "ingested") live.textContent = "Новое сообщение — список обновлён";
      if (live && data.kind === "alert" && data.alert === "sla_breach") live.textContent = "Срок ответа нарушен: " + (data.number || "");
      clearTimeout(pending);
      pending = setTimeout(function () { htmx.trigger(body, "inbox-changed"); }, 200);
    });
  }

  // The inbox filters apply as soon as one changes (no inline handlers: the CSP forbids them).
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function () { form.submit(); });
  });

  // «Вставить в ответ» and template buttons put their text into the reply box.
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-fill]");
    if (!button) return;
    var box = document.getElementById("reply-text");
    if (!box) return;
    box.value = button.dataset.fill;
    box.focus();
    htmx.trigger(box, "fill");
  });
})();
