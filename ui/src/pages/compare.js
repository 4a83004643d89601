// Several runs side by side: overlaid curves per metric, and a table of params and latest
// metrics with the rows that differ marked (or only those shown).
import { html } from "htm/preact";
import { useMemo, useState } from "preact/hooks";
import { enc, get } from "../api.js";
import { Chart, ChartControls, VIEW, axisProps, color, xOf } from "../chart.js";
import { Loading, Section, Status, useData } from "../common.js";
import { fmtNumber, short } from "../format.js";

const MAX_CHARTS = 24;

function Overlay({ runs, metric, view }) {
  const found = useData(
    () => Promise.all(runs.map((r) => get(`/api/runs/${enc(r.id)}/metric`, { key: metric }).catch(() => null))),
    [runs.map((r) => r.id).join(","), metric]
  );
  const series = useMemo(() => {
    const out = [];
    (found.data || []).forEach((d, i) => {
      if (d) out.push({ label: runs[i].name || short(runs[i].id), x: xOf(d, view.axis), y: d.value });
    });
    return out;
  }, [found.data, view.axis]);
  return html`<div class="chart-box" data-metric=${metric}>
    <${Loading} state=${found}>${() => html`<${Chart} title=${metric} series=${series} ...${axisProps(view)} />`}<//>
  </div>`;
}

function Diff({ runs, kind, onlyDiff }) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r[kind])))].sort();
  const rows = keys
    .map((k) => {
      const cells = runs.map((r) => (r[kind][k] === undefined ? "" : kind === "metrics" ? fmtNumber(r[kind][k]) : String(r[kind][k])));
      return { k, cells, differs: new Set(cells).size > 1 };
    })
    .filter((row) => !onlyDiff || row.differs);
  return rows.map((row) => html`<tr class=${row.differs ? "differs" : ""}>
    <th>${kind}.${row.k}</th>${row.cells.map((c) => html`<td class="val">${c}</td>`)}
  </tr>`);
}

export function ComparePage({ ids }) {
  const [view, setView] = useState(VIEW);
  const [onlyDiff, setOnlyDiff] = useState(true);
  const found = useData(() => get("/api/compare", { run: ids }), [ids.join(",")]);
  return html`<${Loading} state=${found}>${({ runs }) => {
    const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
    return html`<div>
      <header class="title"><h1>Compare ${runs.length} runs</h1></header>
      <${Section} title="Curves" right=${html`<${ChartControls} value=${view} onChange=${setView} />`}>
        <div class="charts">${metrics.slice(0, MAX_CHARTS).map((m) => html`<${Overlay} key=${m} runs=${runs} metric=${m} view=${view} />`)}</div>
        ${metrics.length > MAX_CHARTS && html`<p class="muted">the first ${MAX_CHARTS} of ${metrics.length} metrics are drawn</p>`}
      <//>
      <${Section} title="Params and metrics" right=${html`<label><input type="checkbox" checked=${onlyDiff} onChange=${(e) => setOnlyDiff(e.target.checked)} /> only differences</label>`}>
        <div class="table-scroll"><table class="compare"><thead><tr><th></th>${runs.map((r, i) => html`<th><span class="swatch" style=${{ background: color(i) }}></span><a href=${`#/runs/${r.id}`}>${r.name || short(r.id)}</a></th>`)}</tr></thead>
          <tbody>
            <tr><th>status</th>${runs.map((r) => html`<td><${Status} status=${r.status} /></td>`)}</tr>
            <tr><th>experiment</th>${runs.map((r) => html`<td>${r.experiment}</td>`)}</tr>
            <${Diff} runs=${runs} kind="params" onlyDiff=${onlyDiff} />
            <${Diff} runs=${runs} kind="metrics" onlyDiff=${onlyDiff} />
          </tbody>
        </table></div>
      <//>
    </div>`;
  }}<//>`;
}
