// What served models answered: volume, latency percentiles, label coverage and live
// accuracy per version over time; updated in place while the page is open.
import { html } from "htm/preact";
import { useMemo } from "preact/hooks";
import { enc, get } from "../api.js";
import { Chart } from "../chart.js";
import { Loading, Section, useData } from "../common.js";
import { fmtNumber, fmtPercent, fmtTime } from "../format.js";
import { href, replaceHash } from "../route.js";

const LIVE_MS = 5000;

export function PredictionsPage() {
  const found = useData(() => get("/api/predictions"), []);
  return html`<div>
    <header class="title"><h1>Predictions</h1><span class="muted">what served models answered</span></header>
    <${Loading} state=${found}>${(list) => list.length === 0
      ? html`<p class="muted">no models yet</p>`
      : html`<table><thead><tr><th>model</th><th>predictions</th><th>labeled</th><th></th></tr></thead><tbody>
        ${list.map((m) => html`<tr><td><a href=${`#/predictions/${enc(m.model)}`}>${m.model}</a></td><td class="num">${fmtNumber(m.predictions)}</td>
          <td class="num">${fmtNumber(m.labeled)}</td><td><a href=${`#/label/${enc(m.model)}`}>label</a></td></tr>`)}
      </tbody></table>`}<//>
  </div>`;
}

// One series per version over the buckets' starts.
function perVersion(buckets, pick) {
  const versions = [...new Set(buckets.map((b) => b.version))].sort((a, b) => a - b);
  const starts = [...new Set(buckets.map((b) => b.start))].sort((a, b) => a - b);
  return versions.map((v) => {
    const at = new Map(buckets.filter((b) => b.version === v).map((b) => [b.start, pick(b)]));
    return { label: `@${v}`, x: starts, y: starts.map((s) => (at.has(s) ? at.get(s) : null)) };
  });
}

// The per-bucket charts, built once per answer (the page polls; a chart redraws only when
// its answer changed).
function BucketCharts({ stats, by }) {
  const accuracy = stats.live_accuracy !== undefined;
  const charts = useMemo(() => {
    const buckets = stats.buckets || [];
    return [
      [`predictions per ${by}`, perVersion(buckets, (b) => b.predictions)],
      [accuracy ? `live accuracy per ${by}` : `live MAE per ${by}`, perVersion(buckets, accuracy ? (b) => b.live_accuracy : (b) => b.live_mae)],
      ["latency p99 (ms)", perVersion(buckets, (b) => b.latency_ms.p99)],
      ["label coverage", perVersion(buckets, (b) => b.label_coverage)],
    ];
  }, [stats, by]);
  return html`<div class="charts">${charts.map(([title, series]) => html`<div class="chart-box"><${Chart} title=${title} time=${true} series=${series} /></div>`)}</div>`;
}

function Card({ label, value }) {
  return html`<div class="stat"><div class="value">${value}</div><div class="label">${label}</div></div>`;
}

export function PredictionsModelPage({ model, params }) {
  const by = params.get("by") || "hour";
  const found = useData(() => get(`/api/predictions/${enc(model)}/stats`, { by }), [model, by], LIVE_MS);
  return html`<${Loading} state=${found}>${(s) => {
    const accuracy = s.live_accuracy !== undefined;
    return html`<div>
      <header class="title"><h1>${model}: predictions</h1>
        <label>per <select value=${by} onChange=${(e) => replaceHash(`/predictions/${model}`, { by: e.target.value })}>
          <option value="hour">hour</option><option value="day">day</option></select></label>
        <a href=${href(`/label/${model}`)}>label predictions</a>
        <span class="live">● live</span></header>
      <div class="stats">
        <${Card} label="predictions" value=${fmtNumber(s.predictions)} />
        <${Card} label="labeled" value=${fmtNumber(s.labeled)} />
        <${Card} label="label coverage" value=${fmtPercent(s.label_coverage)} />
        <${Card} label=${accuracy ? "live accuracy" : "live MAE"} value=${accuracy ? fmtPercent(s.live_accuracy) : fmtNumber(s.live_mae)} />
        <${Card} label="latency p50 / p99" value=${s.latency_ms.p50 === null ? "–" : `${fmtNumber(s.latency_ms.p50)} / ${fmtNumber(s.latency_ms.p99)} ms`} />
        <${Card} label="labels no harvest took" value=${fmtNumber(s.new_labels)} />
      </div>
      <${Section} title="Per version">
        <table><thead><tr><th>version</th><th>predictions</th><th>labeled</th><th>coverage</th><th>${accuracy ? "live accuracy" : "live MAE"}</th><th>p50</th><th>p90</th><th>p99</th></tr></thead><tbody>
          ${s.versions.map((v) => html`<tr><td><a href=${`#/models/${enc(model)}/${v.version}`}>@${v.version}</a></td><td class="num">${fmtNumber(v.predictions)}</td>
            <td class="num">${fmtNumber(v.labeled)}</td><td class="num">${fmtPercent(v.label_coverage)}</td>
            <td class="num">${accuracy ? fmtPercent(v.live_accuracy) : fmtNumber(v.live_mae)}</td>
            ${["p50", "p90", "p99"].map((p) => html`<td class="num">${v.latency_ms[p] === null ? "–" : `${fmtNumber(v.latency_ms[p])} ms`}</td>`)}</tr>`)}
        </tbody></table>
        <p class="muted">${s.first ? `${fmtTime(s.first)} – ${fmtTime(s.last)}` : "no predictions yet"}</p>
      <//>
      ${(s.buckets || []).length > 0 && html`<${BucketCharts} stats=${s} by=${by} />`}
    </div>`;
  }}<//>`;
}
