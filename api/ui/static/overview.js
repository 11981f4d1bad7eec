// The process overview: draws the charts from the page's data and, on every case event of the hub's event
// feed (server-sent events), fetches the figures panel again, so a case moving stage shows without reload.
"use strict";

(function () {
  const figures = document.getElementById("figures");
  const live = document.getElementById("live");
  const charts = {};
  // Charts draw their labels on a canvas, which cannot wait for a web font: the hub's CJK font is loaded
  // before the first drawing, or machines without Chinese system fonts would show empty boxes.
  const FONT = getComputedStyle(document.body).fontFamily;
  let refreshes = 0;

  function bar(names, series, horizontal) {
    const category = { type: "category", data: names, axisLabel: { interval: 0 } };
    const value = { type: "value", minInterval: 1 };
    return {
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: horizontal ? 110 : 40, right: 20, top: 30, bottom: 50, containLabel: !horizontal },
      xAxis: horizontal ? value : { ...category, axisLabel: { interval: 0, rotate: 30 } },
      yAxis: horizontal ? { ...category, inverse: true } : value,
      series: series,
    };
  }

  function options(data) {
    const trend = data.trend;
    return {
      "chart-stages": bar(data.by_stage.names, [
        { name: "在途", type: "bar", data: data.by_stage.cases },
        { name: "临期", type: "bar", data: data.by_stage.at_risk, color: "#e6a23c" },
        { name: "超期", type: "bar", data: data.by_stage.overdue, color: "#d9534f" },
      ], false),
      "chart-trend": {
        textStyle: { fontFamily: FONT },
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 45, right: 45, top: 30, bottom: 30 },
        xAxis: { type: "category", data: trend.months },
        yAxis: [
          { type: "value", name: "户 / 工作日", minInterval: 1 },
          { type: "value", name: "%", max: 100 },
        ],
        series: [
          { name: "送电户数", type: "bar", data: trend.energised },
          { name: "平均接电工作日", type: "line", data: trend.working_days_mean },
          { name: "承诺时限内 %", type: "line", yAxisIndex: 1, data: trend.within_commitment },
        ],
      },
      "chart-bottleneck-stages": bar(data.bottleneck_stages.names, [
        { name: "超时限工作日", type: "bar", data: data.bottleneck_stages.excess_days, color: "#d9534f" },
      ], true),
      "chart-bottleneck-units": bar(data.bottleneck_units.names, [
        { name: "超时限工作日", type: "bar", data: data.bottleneck_units.excess_days, color: "#e6a23c" },
      ], true),
    };
  }

  function draw(data) {
    if (!window.echarts) {
      return;
    }
    for (const [id, option] of Object.entries(options(data))) {
      const element = document.getElementById(id);
      if (!element) {
        continue;
      }
      charts[id] = charts[id] || window.echarts.init(element);
      charts[id].setOption(option, true);
    }
  }

  async function refresh() {
    const response = await fetch("/ui/overview/figures?" + figures.dataset.query, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.redirected) {
      // The session ended (its token expired): the hub sent the request on to the login form.
      window.location.assign(response.url);
      return;
    }
    if (!response.ok) {
      live.dataset.state = "error";
      live.textContent = "实时更新: 刷新失败 (" + response.status + ")";
      return;
    }
    const body = await response.json();
    figures.innerHTML = body.html;
    draw(body.charts);
    refreshes += 1;
    figures.dataset.refreshes = String(refreshes);
    live.textContent = "实时更新: " + new Date().toLocaleTimeString("zh-CN") + " 已刷新";
  }

  let pending = null;
  function soon() {
    // Events come in bursts (a poll moves many cases): one refresh per burst.
    clearTimeout(pending);
    pending = setTimeout(refresh, 300);
  }

  function follow() {
    if (!window.EventSource) {
      live.textContent = "实时更新: 浏览器不支持";
      return;
    }
    const source = new EventSource(figures.dataset.stream);
    source.onopen = function () {
      live.dataset.state = "open";
      live.textContent = "实时更新: 已连接";
    };
    source.onerror = function () {
      live.dataset.state = "reconnecting";
      live.textContent = "实时更新: 重新连接中";
    };
    for (const type of JSON.parse(figures.dataset.events)) {
      source.addEventListener(type, soon);
    }
  }

  const initial = JSON.parse(document.getElementById("charts-data").textContent);
  document.fonts.load("12px " + FONT, "环节").then(function () { draw(initial); }, function () { draw(initial); });
  window.addEventListener("resize", function () {
    Object.values(charts).forEach(function (chart) { chart.resize(); });
  });
  follow();
})();
