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

function prepared(series, smoothing, log) {
  const aligned =
    series.length === 1
      ? [series[0].x, smooth(series[0].y, smoothing)]
      : uPlot.join(series.map((s) => [s.x, smooth(s.y, smoothing)]));
  // A log axis cannot show zero or negatives: those points are left out of it.
  const values = aligned.slice(1);
  return [aligned[0], ...(log ? values.map((ys) => ys.map((v) => (v > 0 ? v : null))) : values)];
}

// series: [{label, x: number[], y: (number|null)[]}]. The plot is made once per shape
// (axis, scale, labels); new data (a live run's points, a poll) goes in with setData, which
// keeps a zoom the user made.
// A metric's x values for an axis: its steps, its wall-clock times, or seconds since its
// first point (what lets runs started at different times be laid over each other).
export function xOf(d, axis) {
  if (axis === "time") return d.time;
  if (axis === "relative") return d.time.map((t) => t - d.time[0]);
  return d.step;
}

export function Chart({ title, series, time = false, log = false, smoothing = 0, height = 220,
  scatter = false, xLabel = null }) {
  const box = useRef(null);
  const plot = useRef(null);
  const zoomed = useRef(false);
  const drawnWith = useRef({ series: null, smoothing: null });
  const total = series.reduce((n, s) => n + s.x.length, 0);
  const labels = series.map((s) => s.label).join("\n");
  useEffect(() => {
    const target = box.current;
    if (!target || !series.length) return undefined;
    zoomed.current = false;
    const opts = {
      width: Math.max(240, target.clientWidth),
      height,
      title,
      scales: { x: { time }, y: log ? { distr: 3 } : {} },
      axes: [xLabel ? { label: xLabel, labelSize: 20 } : {}, { size: 60 }],
      series: [
        { label: xLabel || (time ? "time" : "step") },
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
        setSelect: [(u) => { if (u.select.width > 0) zoomed.current = true; }],
        draw: [
          () => {
            target.dataset.drawn = target.dataset.total;
            window.__honeDrawn = performance.now();
          },
        ],
      },
    };
    target.dataset.total = String(total);
    target.dataset.axis = xLabel ? "relative" : time ? "time" : "step";
    target.dataset.scale = log ? "log" : "linear";
    const made = new uPlot(opts, prepared(series, smoothing, log), target);
    plot.current = made;
    drawnWith.current = { series, smoothing };
    const unzoom = () => { zoomed.current = false; };
    target.addEventListener("dblclick", unzoom);
    // The observer fires once at the start too: redraw only when the width really changed.
    const resize = new ResizeObserver(() => {
      const width = Math.max(240, target.clientWidth);
      if (width !== made.width) made.setSize({ width, height });
    });
    resize.observe(target);
    return () => {
      resize.disconnect();
      target.removeEventListener("dblclick", unzoom);
      made.destroy();
      plot.current = null;
      delete target.dataset.drawn;
    };
    // The shape only: new data for the same shape goes through setData below.
  }, [time, log, height, scatter, title, labels, xLabel, series.length === 0]);
  useEffect(() => {
    const made = plot.current;
    const last = drawnWith.current;
    if (!made || !series.length || (last.series === series && last.smoothing === smoothing)) return;
    drawnWith.current = { series, smoothing };
    box.current.dataset.total = String(total);
    made.setData(prepared(series, smoothing, log), !zoomed.current);
  }, [series, smoothing]);
  return html`<div class="chart" ref=${box}></div>`;
}

// The x axis, smoothing and log controls shared by a page's charts.
export const VIEW = { axis: "step", log: false, smoothing: 0 };

// What a page's view says to a Chart.
export const axisProps = (view) => ({
  time: view.axis === "time",
  xLabel: view.axis === "relative" ? "seconds since the first point" : null,
  log: view.log,
  smoothing: view.smoothing,
});

export function ChartControls({ value, onChange }) {
  const set = (patch) => onChange({ ...value, ...patch });
  return html`<div class="controls">
    <label>x axis
      <select value=${value.axis} onChange=${(e) => set({ axis: e.target.value })}>
        <option value="step">step</option>
        <option value="time">time</option>
        <option value="relative">relative time (s)</option>
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
