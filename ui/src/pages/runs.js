// Experiments → the runs table: filter language (errors shown where they are), sort by any
// column, choose columns, page through, select runs to compare.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { get } from "../api.js";
import { ErrorBox, Loading, Status, useData } from "../common.js";
import { fmtDuration, fmtNumber, fmtTime, short } from "../format.js";
import { href, replaceHash } from "../route.js";

const PAGE = 50;
const LIVE_MS = 5000;
const MAX_COMPARE = 20; // as the API takes

function state(params) {
  return {
    experiment: params.getAll("experiment"),
    filter: params.get("filter") || "",
    order: params.get("order") || "",
    offset: Math.max(0, Math.floor(Number(params.get("offset") || 0)) || 0),
    cols: params.has("cols") ? params.get("cols").split(",").filter(Boolean) : null,
  };
}

function go(s) {
  replaceHash("/runs", {
    experiment: s.experiment,
    filter: s.filter,
    order: s.order,
    offset: s.offset || "",
    cols: s.cols ? s.cols.join(",") : null,
  });
}

function Experiments({ chosen, onChoose }) {
  const found = useData(() => get("/api/experiments"), []);
  return html`<aside class="side">
    <h3>Experiments</h3>
    <${Loading} state=${found}>${(list) => html`<ul class="pick">
      <li class=${chosen.length === 0 ? "here" : ""}>
        <a href="" onClick=${(e) => { e.preventDefault(); onChoose([]); }}>all runs</a>
      </li>
      ${list.map((x) => html`<li class=${chosen.includes(x.name) ? "here" : ""}>
        <a href="" onClick=${(e) => { e.preventDefault(); onChoose([x.name]); }}>${x.name}</a>
        <span class="count">${x.runs.toLocaleString("en-US")}</span>
      </li>`)}
    </ul>`}<//>
  </aside>`;
}

function FilterBox({ value, error, onApply }) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  const position = error && error.position !== null ? error.position : null;
  return html`<form class="filter" onSubmit=${(e) => { e.preventDefault(); onApply(text); }}>
    <input name="filter" value=${text} spellcheck="false" autocomplete="off"
      placeholder="metrics.acc > 0.9 and params.lr = '0.01'"
      onInput=${(e) => setText(e.target.value)} class=${error ? "bad" : ""} />
    <button>filter</button>
    ${error && html`<div class="filter-error" role="alert">
      ${position !== null && html`<pre class="caret">${`${value}\n${" ".repeat(position)}^`}</pre>`}
      <span>${error.message}</span>
    </div>`}
  </form>`;
}

function ColumnChooser({ keys, cols, onChange }) {
  const [open, setOpen] = useState(false);
  const all = [...keys.metrics.map((k) => `metrics.${k}`), ...keys.params.map((k) => `params.${k}`),
    ...keys.tags.filter((k) => !k.startsWith("hone.")).map((k) => `tags.${k}`)];
  const toggle = (c) => onChange(cols.includes(c) ? cols.filter((x) => x !== c) : [...cols, c]);
  return html`<div class="chooser">
    <button type="button" onClick=${() => setOpen(!open)}>columns (${cols.length})</button>
    ${open && html`<div class="menu">
      ${all.length === 0 && html`<p class="muted">no params or metrics yet</p>`}
      ${all.map((c) => html`<label><input type="checkbox" checked=${cols.includes(c)}
        onChange=${() => toggle(c)} /> ${c}</label>`)}
    </div>`}
  </div>`;
}

// Until columns are chosen: the metrics and params most of the page's runs have.
function defaultColumns(runs) {
  const common = (kind, n) => {
    const counts = new Map();
    for (const r of runs) for (const k of Object.keys(r[kind])) counts.set(k, (counts.get(k) || 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n).map(([k]) => `${kind}.${k}`);
  };
  return [...common("metrics", 4), ...common("params", 3)];
}

// A column as the filter language names it: keys in backticks (they may hold / or spaces).
function fieldOf(col) {
  const dot = col.indexOf(".");
  return dot < 0 ? col : `${col.slice(0, dot)}.\`${col.slice(dot + 1)}\``;
}

function cell(run, col) {
  const [kind, ...rest] = col.split(".");
  const key = rest.join(".");
  const v = (run[kind] || {})[key];
  return kind === "metrics" ? fmtNumber(v) : v === undefined ? "" : String(v);
}

export function RunsPage({ params }) {
  const s = state(params);
  const [selected, setSelected] = useState([]);
  const keys = useData(() => get("/api/runs/keys", { experiment: s.experiment }), [s.experiment.join("\n")]);
  // The rows and the count of matches are asked for side by side: rows come first, and
  // the count (a walk over every match) follows without holding them up.
  // While a run on the page is running, the page follows it (status, latest metrics).
  const [running, setRunning] = useState(false);
  const page = useData(
    () => get("/api/runs", { experiment: s.experiment, filter: s.filter, order_by: s.order || null,
      offset: s.offset, limit: PAGE, total: false }).then((found) => {
      setRunning(found.runs.some((r) => r.status === "running"));
      return found;
    }),
    [s.experiment.join("\n"), s.filter, s.order, s.offset],
    running ? LIVE_MS : 0
  );
  const counted = useData(
    () => get("/api/runs/count", { experiment: s.experiment, filter: s.filter }),
    [s.experiment.join("\n"), s.filter]
  );
  const total = counted.data ? counted.data.total : null;
  const known = keys.data || { params: [], metrics: [], tags: [] };
  const cols = s.cols || defaultColumns(page.data ? page.data.runs : []);
  const cut = s.order.lastIndexOf(" ");
  const [now, dir] = cut < 0 ? [s.order, "asc"] : [s.order.slice(0, cut), s.order.slice(cut + 1)];
  const sortBy = (field) => {
    const f = fieldOf(field);
    go({ ...s, order: now === f && dir === "desc" ? `${f} asc` : `${f} desc`, offset: 0 });
  };
  const arrow = (field) => (now === fieldOf(field) ? (dir === "asc" ? " ▲" : " ▼") : "");
  const toggle = (id) =>
    setSelected(selected.includes(id) ? selected.filter((x) => x !== id) : [...selected, id]);
  const filterError = page.error && page.error.parameter === "filter" ? page.error : null;
  const sortError = page.error && page.error.parameter === "order_by" ? page.error : null;
  const head = (field, label) => html`<th class="sortable" onClick=${() => sortBy(field)}>${label}${arrow(field)}</th>`;
  return html`<div class="with-side">
    <${Experiments} chosen=${s.experiment}
      onChoose=${(experiment) => go({ ...s, experiment, offset: 0 })} />
    <div class="grow">
      <div class="toolbar">
        <${FilterBox} value=${s.filter} error=${filterError}
          onApply=${(filter) => go({ ...s, filter, offset: 0 })} />
        <${ColumnChooser} keys=${known} cols=${cols} onChange=${(c) => go({ ...s, cols: c })} />
        <a class=${`button ${selected.length < 2 || selected.length > MAX_COMPARE ? "disabled" : ""}`} id="compare"
          title=${selected.length > MAX_COMPARE ? `compare takes at most ${MAX_COMPARE} runs` : ""}
          href=${selected.length >= 2 && selected.length <= MAX_COMPARE ? href("/compare", { run: selected }) : undefined}>
          compare (${selected.length}${selected.length > MAX_COMPARE ? ` of at most ${MAX_COMPARE}` : ""})</a>
      </div>
      ${page.error && !filterError && html`<${ErrorBox} error=${page.error} />`}
      ${sortError && html`<p><a href="" onClick=${(e) => { e.preventDefault(); go({ ...s, order: "", offset: 0 }); }}>sort newest first instead</a></p>`}
      ${page.data && html`<div>
        <div class="table-scroll"><table class="runs">
          <thead><tr>
            <th></th>${head("name", "name")}${head("status", "status")}
            ${head("start_time", "started")}<th>duration</th><th>experiment</th>
            ${cols.map((c) => head(c, c))}
          </tr></thead>
          <tbody>
            ${page.data.runs.map((r) => html`<tr key=${r.id}>
              <td><input type="checkbox" checked=${selected.includes(r.id)}
                onChange=${() => toggle(r.id)} aria-label=${`select ${r.name}`} /></td>
              <td><a href=${`#/runs/${r.id}`} title=${r.id}>${r.name || short(r.id)}</a></td>
              <td><${Status} status=${r.status} /></td>
              <td>${fmtTime(r.start_time)}</td>
              <td>${fmtDuration(r.end_time ? r.end_time - r.start_time : null)}</td>
              <td>${r.experiment}</td>
              ${cols.map((c) => html`<td class="num">${cell(r, c)}</td>`)}
            </tr>`)}
          </tbody>
        </table></div>
        ${page.data.runs.length === 0 && html`<p class="muted">no runs match</p>`}
        <div class="pager">
          <button disabled=${s.offset === 0} onClick=${() => go({ ...s, offset: Math.max(0, s.offset - PAGE) })}>‹ previous</button>
          <span>${page.data.runs.length ? `${(s.offset + 1).toLocaleString("en-US")}–${(s.offset + page.data.runs.length).toLocaleString("en-US")}` : "0"} of ${total === null ? "…" : total.toLocaleString("en-US")}</span>
          <button disabled=${total === null ? page.data.runs.length < PAGE : s.offset + PAGE >= total} onClick=${() => go({ ...s, offset: s.offset + PAGE })}>next ›</button>
        </div>
      </div>`}
    </div>
  </div>`;
}
