// Datasets: the list, a dataset's versions as its lineage tree (pick two to diff), one
// version (schema, rows and labels per split, feature statistics and histograms,
// thumbnails of image rows), and the diff of two versions.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { enc, get } from "../api.js";
import { color } from "../chart.js";
import { KeyValues, Loading, Section, useData } from "../common.js";
import { fmtNumber, fmtTime, short } from "../format.js";
import { href } from "../route.js";

const refOf = (v) => `${v.dataset}@${v.id.slice(0, 12)}`;

export function DatasetsPage() {
  const found = useData(() => get("/api/datasets"), []);
  return html`<div>
    <header class="title"><h1>Datasets</h1></header>
    <${Loading} state=${found}>${(list) => list.length === 0
      ? html`<p class="muted">no datasets yet: <code>hone data import NAME SOURCE</code></p>`
      : html`<table><thead><tr><th>name</th><th>versions</th><th>latest</th><th>rows</th><th>splits</th><th>created</th></tr></thead><tbody>
        ${list.map((d) => html`<tr>
          <td><a href=${`#/datasets/${enc(d.name)}`}>${d.name}</a></td><td class="num">${d.versions}</td>
          <td><a href=${href("/dataset", { ref: refOf(d.latest) })}><code>${short(d.latest.id)}</code></a></td>
          <td class="num">${fmtNumber(d.latest.rows)}</td>
          <td>${Object.entries(d.latest.summary.splits || {}).map(([k, v]) => `${k} ${fmtNumber(v)}`).join(" · ")}</td>
          <td>${fmtTime(d.latest.created_at)}</td></tr>`)}
      </tbody></table>`}<//>
  </div>`;
}

function lineageText(v) {
  const params = (v.summary.lineage || {}).params || {};
  return Object.entries(params)
    .filter(([k, x]) => x !== null && x !== false && k !== "features")
    .map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`)
    .join(", ");
}

export function DatasetPage({ name }) {
  const found = useData(() => get("/api/datasets/versions", { name }), [name]);
  const [picked, setPicked] = useState([]);
  const pick = (ref) => setPicked(picked.includes(ref) ? picked.filter((x) => x !== ref) : [...picked.slice(-1), ref]);
  return html`<div>
    <header class="title"><h1>${name}</h1><span class="muted">versions as a lineage tree</span>
      <a class=${`button ${picked.length === 2 ? "" : "disabled"}`} id="diff"
        href=${picked.length === 2 ? href("/diff", { old: picked[0], new: picked[1] }) : undefined}>diff (${picked.length}/2)</a>
    </header>
    <${Loading} state=${found}>${(tree) => html`<table class="tree"><thead><tr><th></th><th>version</th><th>operation</th><th>rows</th><th>splits</th><th>created</th><th>how</th></tr></thead><tbody>
      ${tree.map((v) => html`<tr>
        <td><input type="checkbox" checked=${picked.includes(refOf(v))} onChange=${() => pick(refOf(v))} aria-label=${`pick ${refOf(v)}`} /></td>
        <td style=${{ paddingLeft: `${0.5 + v.depth * 1.5}em` }}>${v.depth ? "└ " : ""}<a href=${href("/dataset", { ref: refOf(v) })}><code>${short(v.id)}</code></a></td>
        <td>${v.operation}</td><td class="num">${fmtNumber(v.rows)}</td>
        <td>${Object.entries(v.summary.splits || {}).map(([k, n]) => `${k} ${fmtNumber(n)}`).join(" · ")}</td>
        <td>${fmtTime(v.created_at)}</td><td class="muted">${lineageText(v)}</td></tr>`)}
    </tbody></table>`}<//>
  </div>`;
}

function LabelBars({ labels }) {
  const splits = Object.keys(labels).sort();
  if (!splits.length) return html`<p class="muted">no labels</p>`;
  const classes = [...new Set(splits.flatMap((s) => Object.keys(labels[s])))];
  return html`<div class="label-dist">${splits.map((s) => {
    const counts = labels[s];
    const top = Math.max(1, ...Object.values(counts));
    return html`<div class="dist"><h3>${s}</h3><table class="bars">
      ${classes.slice(0, 50).map((c, i) => html`<tr><th>${c}</th><td>
        <span class="bar" style=${{ width: `${(100 * (counts[c] || 0)) / top}%`, background: color(i) }}></span>
        <span class="muted">${fmtNumber(counts[c] || 0)}</span></td></tr>`)}
    </table>${classes.length > 50 ? html`<p class="muted">${classes.length - 50} more classes</p>` : null}</div>`;
  })}</div>`;
}

function Histogram({ version, feature, split }) {
  const found = useData(() => get("/api/datasets/histogram", { ref: version, feature, split, bins: 30 }), [version, feature, split]);
  return html`<${Loading} state=${found}>${(h) => {
    const top = Math.max(1, ...h.counts);
    return html`<div class="histogram" data-feature=${feature}>
      <div class="hbars">${h.counts.map((c, i) => html`<span style=${{ height: `${(100 * c) / top}%` }} title=${`[${fmtNumber(h.edges[i])}, ${fmtNumber(h.edges[i + 1])}): ${c}`}></span>`)}</div>
      <div class="hedges"><span>${fmtNumber(h.edges[0])}</span><span>${fmtNumber(h.edges[h.edges.length - 1])}</span></div>
      <p class="muted">${fmtNumber(h.rows)} rows${h.nonfinite ? `, ${h.nonfinite} not finite` : ""}</p>
    </div>`;
  }}<//>`;
}

function Thumbnails({ version, splits }) {
  const [split, setSplit] = useState(splits[0] || "");
  const found = useData(() => get("/api/datasets/thumbnails", { ref: version, split, n: 48 }), [version, split]);
  return html`<div>
    <select value=${split} onChange=${(e) => setSplit(e.target.value)}>${splits.map((s) => html`<option>${s}</option>`)}</select>
    <${Loading} state=${found}>${(t) => html`<div class="thumbs">${t.items.map((it) => html`<figure><img src=${it.src} alt=${`label ${it.label}`} /><figcaption>${String(it.label ?? "")}</figcaption></figure>`)}</div>`}<//>
  </div>`;
}

export function VersionPage({ ref_ }) {
  const found = useData(() => get("/api/datasets/version", { ref: ref_ }), [ref_]);
  const [feature, setFeature] = useState(null);
  const [split, setSplit] = useState("");
  return html`<${Loading} state=${found}>${(v) => {
    const s = v.summary;
    const schema = s.schema || {};
    const feats = schema.features || {};
    const stats = s.features || {};
    const names = Object.keys(stats);
    const splits = Object.keys(s.splits || {}).sort();
    const chosen = feature && names.includes(feature) ? feature : names[0];
    return html`<div>
      <header class="title"><h1>${v.ref}</h1><code class="muted">${v.id}</code>
        <a href=${`#/datasets/${enc(v.dataset)}`}>all versions of ${v.dataset}</a></header>
      <div class="grid2">
        <${Section} title="Schema">
          <${KeyValues} rows=${[
            ["features", `${feats.dtype} ${JSON.stringify(feats.shape)} (${(feats.names || []).length} named)`],
            ["label", schema.label && `${schema.label.name} (${schema.label.dtype})${schema.classes ? `, ${schema.classes.length} classes` : ""}`],
            ["rows", fmtNumber(v.rows)],
            ["created", `${fmtTime(v.created_at)} by ${v.operation}`],
            ["source", v.source],
            ["parents", v.parents.length ? v.parents.map((p) => short(p)).join(", ") : "none"],
            ["duplicates", fmtNumber(s.duplicates)],
            ["non-finite", s.nonfinite && `${s.nonfinite.nan} NaN, ${s.nonfinite.inf} inf`],
            ["transforms", (s.transforms || []).map((t) => `${t.op} (fitted on ${t.fitted_on})`).join("; ")],
            ["lineage", s.lineage && `${s.lineage.op} ${lineageText(v)}`],
          ]} />
          ${(s.warnings || []).map((w) => html`<p class="warn">${w}</p>`)}
        <//>
        <${Section} title="Rows per split">
          <table><tbody>${splits.map((k) => html`<tr><th>${k}</th><td class="num">${fmtNumber(s.splits[k])}</td></tr>`)}</tbody></table>
        <//>
      </div>
      <${Section} title="Label distribution per split"><${LabelBars} labels=${s.labels || {}} /><//>
      ${v.picture && html`<${Section} title="Thumbnails"><${Thumbnails} version=${v.ref} splits=${splits} /><//>`}
      <${Section} title=${`Features (${names.length})`}>
        <div class="grid2">
          <div class="scroll"><table class="features"><thead><tr><th>name</th><th>mean</th><th>std</th><th>min</th><th>max</th></tr></thead><tbody>
            ${names.map((n) => html`<tr class=${n === chosen ? "here" : ""} onClick=${() => setFeature(n)}>
              <th><a href="" onClick=${(e) => e.preventDefault()}>${n}</a></th>
              ${["mean", "std", "min", "max"].map((k) => html`<td class="num">${stats[n][k] === null ? "–" : fmtNumber(stats[n][k])}</td>`)}</tr>`)}
          </tbody></table></div>
          <div>${chosen && html`<h3>${chosen} <select value=${split} onChange=${(e) => setSplit(e.target.value)}>
            <option value="">all rows</option>${splits.map((x) => html`<option>${x}</option>`)}</select></h3>
            <${Histogram} version=${v.ref} feature=${chosen} split=${split} />`}</div>
        </div>
      <//>
    </div>`;
  }}<//>`;
}

export function DiffPage({ old, new_ }) {
  const found = useData(() => get("/api/datasets/diff", { old, new: new_ }), [old, new_]);
  return html`<${Loading} state=${found}>${(d) => {
    const splits = [...new Set(["added", "removed", "relabeled", "moved"].flatMap((k) => Object.keys(d[k])))].sort();
    return html`<div>
      <header class="title"><h1>${d.old} → ${d.new}</h1></header>
      <${Section} title="Rows by split">
        ${splits.length === 0 ? html`<p>the two versions hold the same rows, labels and splits</p>` : html`<table class="diff">
          <thead><tr><th>split</th><th>added</th><th>removed</th><th>relabeled</th><th>moved in</th></tr></thead>
          <tbody>${splits.map((s) => html`<tr><th>${s}</th>${["added", "removed", "relabeled", "moved"].map((k) => html`<td class="num">${fmtNumber(d[k][s] || 0)}</td>`)}</tr>`)}</tbody>
        </table>`}
        ${d.transforms_changed && html`<p class="warn">their transforms differ</p>`}
      <//>
    </div>`;
  }}<//>`;
}
