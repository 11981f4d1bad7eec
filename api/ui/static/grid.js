// The grid page: a scatter plot of the equipment by longitude and latitude, on plain axes (no map tiles:
// intranets reach none), coloured by load rate, one series per kind of equipment.
"use strict";

(function () {
  const element = document.getElementById("chart-grid");
  if (!element || !window.echarts) {
    return;
  }
  const FONT = getComputedStyle(document.body).fontFamily;
  const points = JSON.parse(document.getElementById("grid-points").textContent);
  const SYMBOLS = { substation: "rect", feeder: "triangle", transformer: "circle" };
  const SIZES = { substation: 16, feeder: 11, transformer: 8 };
  const kinds = [];
  for (const point of points) {
    if (!kinds.includes(point.kind)) {
      kinds.push(point.kind);
    }
  }

  function percent(value) {
    return value === null ? "—" : (value * 100).toFixed(1) + "%";
  }

  const series = kinds.map(function (kind) {
    const own = points.filter(function (point) { return point.kind === kind; });
    return {
      name: own[0].kind_name,
      type: "scatter",
      symbol: SYMBOLS[kind] || "circle",
      symbolSize: SIZES[kind] || 8,
      data: own.map(function (point) {
        return { value: [point.lon, point.lat, point.load_rate], point: point };
      }),
    };
  });

  const option = {
    textStyle: { fontFamily: FONT },
    // Colour stands for load rate (the visual map), so the legend tells the kinds apart by shape only.
    legend: { top: 0, itemStyle: { color: "#8a97a8" } },
    grid: { left: 70, right: 90, top: 35, bottom: 45 },
    tooltip: {
      formatter: function (item) {
        const point = item.data.point;
        const open = point.open_kva === null ? "无法计算" : point.open_kva + " kVA";
        return echarts.format.encodeHTML(point.kind_name + " " + point.name + " (" + point.id + ")") +
          "<br>负载率 " + percent(point.load_rate) + "<br>可开放容量 " + echarts.format.encodeHTML(open);
      },
    },
    xAxis: { type: "value", name: "经度", scale: true, boundaryGap: ["5%", "5%"], axisLabel: { formatter: "{value}°" } },
    yAxis: { type: "value", name: "纬度", scale: true, boundaryGap: ["5%", "5%"], axisLabel: { formatter: "{value}°" } },
    visualMap: {
      dimension: 2,
      min: 0,
      max: 1,
      right: 0,
      top: "middle",
      calculable: false,
      text: ["负载率 100%", "0%"],
      inRange: { color: ["#3ba272", "#fac858", "#ee6666"] },
      outOfRange: { color: "#999" },
    },
    series: series,
  };

  const chart = window.echarts.init(element);
  // Tells the page (and its tests) when the points are on the canvas, after the drawing's animation.
  chart.on("finished", function () {
    element.dataset.points = String(points.length);
  });
  function draw() {
    chart.setOption(option);
  }
  document.fonts.load("12px " + FONT, "电网").then(draw, draw);
  chart.on("click", function (item) {
    const row = document.querySelector('#equipment tr[data-equipment="' + CSS.escape(item.data.point.id) + '"]');
    if (row) {
      row.scrollIntoView({ block: "center" });
    }
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
