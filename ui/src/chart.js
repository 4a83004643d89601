// Line charts on uPlot (canvas; stays smooth at 100,000+ points): step or time axis,
// smoothing, log scale, drag to zoom, double-click to zoom back out.
import { html } from "htm/preact";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777",
  "#65a30d", "#4f46e5", "#b45309"];

export const color = (i) => COLORS[i % COLORS.length];

// TensorBoard's smoothing: an exponential moving average, debiased at the start.
export function smooth(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    count++;
    out[i] = last / (1 - weight ** count);
  }
  return out;
}

// series: [{label, x: number[], y: (number|null)[]}]; options: {time, log, smoothing, points}
export function Chart({ title, series, time = false, log = false, smoothing = 0, height = 220,
  scatter = false }) {
  const box = useRef(null);
  useEffect(() => {
    const target = box.current;
    if (!target || !series.length) return undefined;
    const aligned =
      series.length === 1
        ? [series[0].x, smooth(series[0].y, smoothing)]
        : uPlot.join(series.map((s) => [s.x, smooth(s.y, smoothing)]));
    const values = aligned.slice(1);
    // A log axis cannot show zero or negatives: those points are left out of it.
    const shown = log ? values.map((ys) => ys.map((v) => (v > 0 ? v : null))) : values;
    const total = series.reduce((n, s) => n + s.x.length, 0);
    const opts = {
      width: Math.max(240, target.clientWidth),
      height,
      title,
      scales: { x: { time }, y: log ? { distr: 3 } : {} },
      axes: [{}, { size: 60 }],
      series: [
        { label: time ? "time" : "step" },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: color(i),
          width: 1.5,
          spanGaps: true,
          // Lines show their points only when there is room (uPlot decides); a scatter always.
          ...(scatter ? { points: { show: true, size: 5, fill: color(i) }, paths: () => null } : {}),
        })),
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { show: series.length > 1 || scatter },
      hooks: {
        draw: [
          () => {
            target.dataset.drawn = String(total);
            window.__honeDrawn = performance.now();
          },
        ],
      },
    };
    const plot = new uPlot(opts, [aligned[0], ...shown], target);
    // The observer fires once at the start too: redraw only when the width really changed.
    const resize = new ResizeObserver(() => {
      const width = Math.max(240, target.clientWidth);
      if (width !== plot.width) plot.setSize({ width, height });
    });
    resize.observe(target);
    return () => {
      resize.disconnect();
      plot.destroy();
      delete target.dataset.drawn;
    };
  }, [series, time, log, smoothing, height, scatter, title]);
  return html`<div class="chart" ref=${box}></div>`;
}

// Step/time, smoothing and log controls shared by a page's charts.
export function ChartControls({ value, onChange }) {
  const set = (patch) => onChange({ ...value, ...patch });
  return html`<div class="controls">
    <label>x axis
      <select value=${value.time ? "time" : "step"}
        onChange=${(e) => set({ time: e.target.value === "time" })}>
        <option value="step">step</option>
        <option value="time">time</option>
      </select>
    </label>
    <label>smoothing
      <input type="range" min="0" max="0.99" step="0.01" value=${value.smoothing}
        onInput=${(e) => set({ smoothing: Number(e.target.value) })} />
      <span class="muted">${value.smoothing.toFixed(2)}</span>
    </label>
    <label><input type="checkbox" checked=${value.log}
      onChange=${(e) => set({ log: e.target.checked })} /> log scale</label>
    <span class="muted">drag to zoom · double-click to reset</span>
  </div>`;
}
