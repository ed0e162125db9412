// Apache ECharts, vendored in the package (static/vendor/echarts), loaded once on the first chart.
// Charts are disposed of when their page is left, and resized with the window.

let loading = null;
const live = new Set();

export function echartsReady() {
  if (window.echarts) return Promise.resolve(window.echarts);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/vendor/echarts/echarts.min.js";
      script.onload = () => resolve(window.echarts);
      script.onerror = () => reject(new Error("could not load the charting library"));
      document.head.append(script);
    });
  }
  return loading;
}

export const PALETTE = ["#2f6db5", "#e07a2f", "#3a9d5d", "#c4473a", "#7c5cbf", "#2aa3a3", "#b58a2f", "#d45d95", "#5f6b7a", "#8fb339"];

export async function chart(el, option) {
  const echarts = await echartsReady();
  let instance = echarts.getInstanceByDom(el);
  if (!instance) {
    instance = echarts.init(el, null, { renderer: "canvas" });
    live.add(instance);
  }
  instance.setOption({ color: PALETTE, animation: false, textStyle: { fontFamily: "inherit" }, ...option }, { notMerge: true });
  el.dataset.chart = "drawn";
  return instance;
}

export function disposeCharts() {
  for (const instance of live) instance.dispose();
  live.clear();
}

window.addEventListener("resize", () => {
  for (const instance of live) instance.resize();
});

export function lineSeries(name, data, extra = {}) {
  return { name, type: "line", data, showSymbol: false, smooth: false, ...extra };
}

export function sankey(links, extra = {}) {
  const names = new Set();
  for (const l of links) {
    names.add(l.source);
    names.add(l.target);
  }
  return {
    tooltip: { trigger: "item" },
    series: [
      {
        type: "sankey",
        data: [...names].map((name) => ({ name })),
        links: links.map((l) => ({ source: l.source, target: l.target, value: l.value ?? l.people ?? l.count })),
        emphasis: { focus: "adjacency" },
        lineStyle: { color: "gradient", curveness: 0.5 },
        label: { fontSize: 11 },
        ...extra,
      },
    ],
  };
}
