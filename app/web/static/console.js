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

  // On a phone the navigation folds behind the menu button (console.css); the button opens and closes it.
  var menu = document.getElementById("menu-button");
  if (menu) {
    menu.addEventListener("click", function () {
      var open = menu.closest("header").classList.toggle("open");
      menu.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

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

  // Live parts: [data-live] is re-fetched as an HTML fragment every data-interval ms and swapped in.
  document.querySelectorAll("[data-live]").forEach(function (box) {
    var url = box.getAttribute("data-live");
    var every = parseInt(box.getAttribute("data-interval") || "3000", 10);
    var busy = false;
    function refresh() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.redirected || r.status === 401) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          box.innerHTML = html;
          var stamp = box.querySelector("[data-server-now]");
          if (stamp) { skew = Date.parse(stamp.getAttribute("data-server-now")) - Date.now(); }
          tick();
        })
        .catch(function () { /* the next round tries again */ })
        .then(function () { busy = false; });
    }
    setInterval(refresh, every);
  });

  // The Twilio simulator's inbox: one box per phone, replies go to the simulator as that phone's SMS.
  var inbox = document.getElementById("sim-inbox");
  if (inbox) {
    var api = inbox.getAttribute("data-sim");
    var providers = JSON.parse(inbox.getAttribute("data-providers") || "{}");  // app.labels.PROVIDERS
    var phones = {};
    function phoneBox(number) {
      if (phones[number]) { return phones[number]; }
      var sec = document.createElement("section");
      sec.className = "card phone";
      sec.setAttribute("data-phone", number);
      var h = document.createElement("h2"); h.textContent = number; sec.appendChild(h);
      var list = document.createElement("div"); list.className = "messages"; sec.appendChild(list);
      var form = document.createElement("form"); form.className = "reply";
      var input = document.createElement("input"); input.name = "body"; input.placeholder = "回复内容，如 1"; input.maxLength = 160;
      var button = document.createElement("button"); button.type = "submit"; button.textContent = "回复";
      var status = document.createElement("span"); status.className = "muted";
      form.appendChild(input); form.appendChild(button); form.appendChild(status);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        status.textContent = "发送中…";
        fetch(api, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
                     body: JSON.stringify({ from: number, body: input.value }) })
          .then(function (r) { return r.json(); })
          .then(function (answer) { status.textContent = "已发送"; input.value = ""; load(); return answer; })
          .catch(function () { status.textContent = "发送失败"; });
      });
      sec.appendChild(form);
      inbox.appendChild(sec);
      phones[number] = list;
      return list;
    }
    function load() {
      fetch(api, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (messages) {
          var empty = inbox.querySelector("p.muted");
          if (empty && messages.length) { empty.remove(); }
          var by = {};
          messages.forEach(function (m) { (by[m.to] = by[m.to] || []).push(m); });
          Object.keys(by).sort().forEach(function (number) {
            var list = phoneBox(number);
            list.textContent = "";
            by[number].forEach(function (m) {
              var row = document.createElement("div"); row.className = "sms";
              var meta = document.createElement("div"); meta.className = "muted";
              var via = providers[m.provider] || m.provider || "";
              meta.textContent = new Date(m.created).toLocaleString("zh-CN", { hour12: false }) + " · " + via + " · " + (m.status || "");
              var body = document.createElement("div"); body.className = "body"; body.textContent = m.body;
              row.appendChild(meta); row.appendChild(body); list.appendChild(row);
            });
          });
          if (!messages.length && empty) { empty.textContent = "还没有短信。"; }
        })
        .catch(function () { /* try again next round */ });
    }
    load();
    setInterval(load, 2000);
  }

  window.dutyline = { csrf: csrf, tick: tick };
})();
