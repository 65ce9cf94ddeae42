// A time-series chart (uPlot, loaded on first use).
import { useEffect, useRef } from "preact/hooks";

let loading;
const loadUplot = () => (loading ||= import("uplot").then((m) => m.default));

/** `data`: [xs (Unix s), ...ys]; `series`: [{label, stroke}] for the ys. */
export function Chart({ title, data, series, height = 200, unit = "" }) {
  const host = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    let gone = false;
    loadUplot().then((uPlot) => {
      if (gone) return;
      const width = Math.max(280, host.current.clientWidth || 600);
      const opts = {
        title,
        width,
        height,
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, points: { show: true, size: 5 }, value: (u, v) => (v === null ? "—" : `${+v.toFixed(2)}${unit}`) }))],
        axes: [{ stroke: "currentColor" }, { stroke: "currentColor", size: 56 }],
        scales: { x: { time: true } },
      };
      plot.current && plot.current.destroy();
      plot.current = new uPlot(opts, data, host.current);
    });
    return () => { gone = true; };
  }, [JSON.stringify(data), title]);
  useEffect(() => {
    const resize = () => plot.current && plot.current.setSize({ width: Math.max(280, host.current.clientWidth), height });
    addEventListener("resize", resize);
    return () => { removeEventListener("resize", resize); plot.current && plot.current.destroy(); };
  }, []);
  return <figure class="chart" ref={host} aria-label={title} data-points={data[0] ? data[0].length : 0} />;
}
