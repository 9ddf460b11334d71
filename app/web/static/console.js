// The console's only script: confirmations, countdowns and live incident updates. No framework, no network
// beyond this server.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Every element with data-deadline (ISO instant) shows the time left; the offset between the server's clock and
  // the browser's is taken from data-server-now so a test or a skewed PC still counts correctly.
  var skew = 0;
  var root = document.querySelector("[data-server-now]");
  if (root) { skew = Date.parse(root.getAttribute("data-server-now")) - Date.now(); }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("data-deadline")) - now) / 1000);
      el.classList.toggle("overdue", left <= 0);
      if (left <= 0) { el.textContent = "已到期"; return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s);
    });
  }
  setInterval(tick, 1000);
  tick();

  window.dutyline = { csrf: csrf, setSkew: function (serverNow) { skew = Date.parse(serverNow) - Date.now(); }, tick: tick };
})();
