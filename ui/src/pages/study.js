// A study: its optimization history (each trial's value, and the best so far) and its
// trials in parallel coordinates (one axis per parameter, then the value).
import { html } from "htm/preact";
import { enc, get } from "../api.js";
import { Chart, color } from "../chart.js";
import { Loading, Section, useData } from "../common.js";
import { fmtNumber } from "../format.js";

function direction(study) {
  const config = study.config || {};
  const d = String(config.direction || (config.maximize ? "maximize" : "minimize"));
  return d.startsWith("max") ? "maximize" : "minimize";
}

function History({ trials, maximize }) {
  const done = trials.filter((t) => t.value !== null && Number.isFinite(t.value));
  if (done.length === 0) return html`<p class="muted">no complete trial yet</p>`;
  const x = done.map((t) => t.number);
  const best = [];
  let b = null;
  for (const t of done) {
    b = b === null ? t.value : maximize ? Math.max(b, t.value) : Math.min(b, t.value);
    best.push(b);
  }
  return html`<div class="grid2">
    <${Chart} title="trial values" series=${[{ label: "value", x, y: done.map((t) => t.value) }]} scatter=${true} height=${200} />
    <${Chart} title=${`best so far (${maximize ? "max" : "min"})`} series=${[{ label: "best", x, y: best }]} height=${200} />
  </div>`;
}

function axisOf(trials, key) {
  const values = trials.map((t) => (key === "__value" ? t.value : t.params[key]));
  const numeric = values.every((v) => v === undefined || v === null || typeof v === "number");
  if (numeric) {
    const nums = values.filter((v) => typeof v === "number" && Number.isFinite(v));
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    const log = key !== "__value" && lo > 0 && hi / lo > 100;
    const f = (v) => (log ? Math.log10(v) : v);
    return {
      key, label: key === "__value" ? "value" : key, lo, hi,
      at: (v) => (typeof v === "number" && Number.isFinite(v) ? (hi === lo ? 0.5 : (f(v) - f(lo)) / (f(hi) - f(lo))) : null),
    };
  }
  const cats = [...new Set(values.filter((v) => v !== undefined).map(String))].sort();
  return {
    key, label: key, cats,
    at: (v) => (v === undefined ? null : cats.length === 1 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1)),
  };
}

export function ParallelCoordinates({ trials, keys }) {
  const done = trials.filter((t) => t.value !== null && Number.isFinite(t.value));
  if (done.length === 0 || keys.length === 0) return null;
  const axes = [...keys, "__value"].map((k) => axisOf(done, k));
  const W = 900;
  const H = 260;
  const pad = 40;
  const step = (W - 2 * pad) / Math.max(1, axes.length - 1);
  const valueAxis = axes[axes.length - 1];
  return html`<svg class="parallel" viewBox=${`0 0 ${W} ${H + 40}`} role="img" aria-label="parallel coordinates">
    ${done.map((t) => {
      const points = axes
        .map((a, i) => {
          const at = a.at(a.key === "__value" ? t.value : t.params[a.key]);
          return at === null ? null : `${pad + i * step},${20 + (1 - at) * H}`;
        })
        .filter(Boolean);
      const shade = valueAxis.at(t.value) ?? 0.5;
      return html`<polyline points=${points.join(" ")} fill="none" stroke-width="1.5"
        stroke=${`hsl(${220 - shade * 200}, 70%, 45%)`} opacity="0.6"><title>trial ${t.number}: ${fmtNumber(t.value)}</title></polyline>`;
    })}
    ${axes.map((a, i) => html`<g>
      <line x1=${pad + i * step} x2=${pad + i * step} y1="20" y2=${20 + H} stroke="#888" />
      <text x=${pad + i * step} y="12" text-anchor="middle" class="axis-label">${a.label}</text>
      <text x=${pad + i * step + 4} y=${20 + H + 14} class="axis-tick">${a.cats ? a.cats[0] : fmtNumber(a.lo)}</text>
      <text x=${pad + i * step + 4} y="30" class="axis-tick">${a.cats ? a.cats[a.cats.length - 1] : fmtNumber(a.hi)}</text>
    </g>`)}
  </svg>`;
}

export function StudyView({ name, live = false }) {
  // A study still running gains trials: its page follows them.
  const found = useData(() => get(`/api/studies/${enc(name)}`), [name], live ? 5000 : 0);
  return html`<${Section} title=${`Study ${name}`}>
    <${Loading} state=${found}>${(study) => {
      const keys = [...new Set(study.trials.flatMap((t) => Object.keys(t.params)))].sort();
      const maximize = direction(study) === "maximize";
      const imp = (study.importances && study.importances.values) || {};
      return html`<div>
        <p>${Object.entries(study.counts).map(([k, v]) => `${v} ${k}`).join(" · ")} · ${maximize ? "maximize" : "minimize"}</p>
        <${History} trials=${study.trials} maximize=${maximize} />
        <h3>Parallel coordinates</h3>
        <${ParallelCoordinates} trials=${study.trials} keys=${keys} />
        ${Object.keys(imp).length > 0 && html`<h3>Parameter importances</h3>
          <table class="bars">${Object.entries(imp).map(([k, v], i) => html`<tr><th>${k}</th>
            <td><span class="bar" style=${{ width: `${(v * 100).toFixed(1)}%`, background: color(i) }}></span> ${fmtNumber(v)}</td></tr>`)}</table>`}
        <h3>Trials</h3>
        <table><thead><tr><th>#</th><th>state</th><th>value</th>${keys.map((k) => html`<th>${k}</th>`)}<th>run</th></tr></thead><tbody>
          ${study.trials.map((t) => html`<tr><td>${t.number}</td><td>${t.state}</td><td class="num">${fmtNumber(t.value)}</td>
            ${keys.map((k) => html`<td class="num">${t.params[k] === undefined ? "" : fmtNumber(t.params[k])}</td>`)}
            <td>${t.run_id ? html`<a href=${`#/runs/${t.run_id}`}>${t.run_id.slice(0, 12)}</a>` : ""}</td></tr>`)}
        </tbody></table>
      </div>`;
    }}<//>
  <//>`;
}
