// The 问效问责 page: a sortable table and three ECharts charts, drawn from the JSON the page carries. No framework,
// no request beyond this server (ECharts is served from /console/static/vendor/echarts).
(function () {
  "use strict";

  // Sorting: a click on a header sorts the body by that column (numbers by data-value; empty values last).
  function sortBy(table, index, kind, th) {
    var body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].getAttribute("data-value"), y = b.cells[index].getAttribute("data-value");
      if (kind === "num") {
        var xe = x === "" || x === null, ye = y === "" || y === null;
        if (xe || ye) { return xe === ye ? 0 : (xe ? 1 : -1); }
        return ascending ? Number(x) - Number(y) : Number(y) - Number(x);
      }
      return ascending ? String(x).localeCompare(String(y), "zh-CN") : String(y).localeCompare(String(x), "zh-CN");
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, index) {
      th.tabIndex = 0;
      th.classList.add("sort");
      var go = function () { sortBy(table, index, th.getAttribute("data-sort"), th); };
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
    });
  });

  // The custom range's dates matter only for 自定义.
  var period = document.getElementById("report-period"), range = document.getElementById("report-range");
  function showRange() { if (period && range) { range.hidden = period.value !== "custom"; } }
  if (period) { period.addEventListener("change", showRange); showRange(); }

  var source = document.getElementById("report-data");
  if (!source || !window.echarts) { return; }
  var data = JSON.parse(source.textContent);
  var tierNames = data.tiers || {};
  var narrow = window.matchMedia("(max-width: 600px)").matches;
  var charts = [];

  function draw(id, option, rows) {
    var el = document.getElementById(id);
    if (!el) { return; }
    if (rows) { el.style.height = Math.max(240, rows * 26 + 90) + "px"; }
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(option);
    charts.push(chart);
  }

  var grid = { left: 8, right: 16, top: 40, bottom: 8, containLabel: true };
  var legend = { top: 0, type: "scroll" };
  var minutes = function (v) { return v === null || v === undefined ? "—" : v + " 分钟"; };
  var names = data.units.slice().reverse();

  draw("chart-ack", {
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: minutes },
    legend: legend,
    grid: grid,
    xAxis: { type: "value", name: "分钟", nameLocation: "end" },
    yAxis: { type: "category", data: names, axisLabel: { width: narrow ? 72 : 140, overflow: "truncate" } },
    series: Object.keys(tierNames).map(function (t) {
      return { name: tierNames[t], type: "bar", data: data.ack[t].slice().reverse() };
    })
  }, data.units.length);

  draw("chart-trend", {
    tooltip: { trigger: "axis" },
    legend: legend,
    grid: { left: 8, right: 16, top: 64, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: data.weeks.labels },
    yAxis: [{ type: "value", name: "事件数", minInterval: 1 }, { type: "value", name: "分钟" }],
    series: [{ name: "事件数", type: "line", data: data.weeks.incidents }].concat(
      Object.keys(tierNames).map(function (t) {
        return { name: tierNames[t] + "签收中位", type: "line", yAxisIndex: 1, connectNulls: true,
                 data: data.weeks.ack[t], tooltip: { valueFormatter: minutes } };
      })
    )
  });

  draw("chart-rates", {
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
               valueFormatter: function (v) { return v === null || v === undefined ? "—" : v + "%"; } },
    legend: legend,
    grid: grid,
    xAxis: { type: "value", max: 100, name: "%" },
    yAxis: { type: "category", data: names, axisLabel: { width: narrow ? 72 : 140, overflow: "truncate" } },
    series: [
      { name: "查岗应答率", type: "bar", data: data.rates.rollcall.slice().reverse() },
      { name: "通知按时签收率", type: "bar", data: data.rates.notices.slice().reverse() }
    ]
  }, data.units.length);

  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.body.setAttribute("data-charts", String(charts.length));
})();
