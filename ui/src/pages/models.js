// The registry: models, a model's versions with aliases (moved here, with the audit
// history), the promotion gate's evaluations, and one version's lineage and exports.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { enc, get, post } from "../api.js";
import { ErrorBox, KeyValues, Loading, Section, Status, useData } from "../common.js";
import { fmtBytes, fmtNumber, fmtTime, short } from "../format.js";
import { href } from "../route.js";

const Aliases = ({ names }) => names.map((a) => html`<span class="alias">@${a}</span> `);

export function ModelsPage() {
  const found = useData(() => get("/api/models"), []);
  return html`<div>
    <header class="title"><h1>Models</h1></header>
    <${Loading} state=${found}>${(list) => list.length === 0
      ? html`<p class="muted">no models yet: <code>hone models register NAME --run RUN</code></p>`
      : html`<table><thead><tr><th>name</th><th>versions</th><th>latest</th><th>aliases</th><th>created</th></tr></thead><tbody>
        ${list.map((m) => html`<tr><td><a href=${`#/models/${enc(m.name)}`}>${m.name}</a></td><td class="num">${m.versions}</td>
          <td>${m.latest === null ? "" : `@${m.latest}`}</td>
          <td>${Object.entries(m.aliases).map(([a, v]) => html`<span class="alias">@${a} → ${v}</span> `)}</td>
          <td>${fmtTime(m.created_at)}</td></tr>`)}
      </tbody></table>`}<//>
  </div>`;
}

function MoveAlias({ name, versions, onMoved }) {
  const [alias, setAlias] = useState("champion");
  const [version, setVersion] = useState(versions.length ? versions[versions.length - 1].version : 1);
  const [why, setWhy] = useState("");
  const [result, setResult] = useState(null);
  const submit = (e) => {
    e.preventDefault();
    post(`/api/models/${enc(name)}/aliases`, { alias, version: Number(version), why: why || null }).then(
      (r) => { setResult({ ok: r.moved ? `@${alias} now points at @${version}` : `@${alias} already pointed at @${version}` }); onMoved(); },
      (error) => setResult({ error })
    );
  };
  return html`<form class="inline" onSubmit=${submit}>
    <label>alias <input value=${alias} onInput=${(e) => setAlias(e.target.value)} size="12" /></label>
    <label>version <select value=${version} onChange=${(e) => setVersion(e.target.value)}>${versions.map((v) => html`<option value=${v.version}>@${v.version}</option>`)}</select></label>
    <label>why <input value=${why} onInput=${(e) => setWhy(e.target.value)} size="30" placeholder="kept in the history" /></label>
    <button>move</button>
    ${result && (result.error ? html`<${ErrorBox} error=${result.error} />` : html`<span class="ok">${result.ok}</span>`)}
  </form>`;
}

export function ModelPage({ name }) {
  const [tick, setTick] = useState(0);
  const found = useData(() => get(`/api/models/${enc(name)}`), [name, tick]);
  return html`<${Loading} state=${found}>${(m) => html`<div>
    <header class="title"><h1>${m.name}</h1><a href=${`#/predictions/${enc(m.name)}`}>predictions</a> <a href=${`#/label/${enc(m.name)}`}>label</a></header>
    <${Section} title=${`Versions (${m.versions.length})`}>
      <table><thead><tr><th>version</th><th>aliases</th><th>run</th><th>trained on</th><th>metrics</th><th>created</th></tr></thead><tbody>
        ${[...m.versions].reverse().map((v) => html`<tr>
          <td><a href=${`#/models/${enc(m.name)}/${v.version}`}>@${v.version}</a></td><td><${Aliases} names=${v.aliases} /></td>
          <td><a href=${`#/runs/${v.run_id}`}>${short(v.run_id)}</a></td>
          <td><a href=${href("/dataset", { ref: `${(v.data || {}).dataset || ""}@${v.dataset_version}` })}>${short(v.dataset_version)}</a></td>
          <td>${Object.entries(v.metrics || {}).slice(0, 4).map(([k, x]) => `${k} ${fmtNumber(x)}`).join(" · ")}</td>
          <td>${fmtTime(v.created_at)} · ${v.created_by}</td></tr>`)}
      </tbody></table>
    <//>
    <${Section} title="Move an alias"><${MoveAlias} name=${m.name} versions=${m.versions} onMoved=${() => setTick(tick + 1)} /><//>
    <${Section} title="Alias history">
      ${m.history.length === 0 ? html`<p class="muted">no alias moved yet</p>` : html`<table><thead><tr><th>when</th><th>alias</th><th>from</th><th>to</th><th>who</th><th>why</th></tr></thead><tbody>
        ${m.history.map((e) => html`<tr><td>${fmtTime(e.at)}</td><td>@${e.alias}</td><td>${e.from === null ? "–" : `@${e.from}`}</td><td>${e.to === null ? "removed" : `@${e.to}`}</td>
          <td>${e.who}</td><td>${e.why || ""}${e.run_id ? html` <a href=${`#/runs/${e.run_id}`}>evaluation</a>` : ""}</td></tr>`)}
      </tbody></table>`}
    <//>
    <${Section} title="Promotion gate evaluations">
      ${m.promotions.length === 0 ? html`<p class="muted">no promotion evaluated yet</p>` : html`<table><thead><tr><th>when</th><th>candidate</th><th>gate</th><th>on</th><th>result</th><th>account</th></tr></thead><tbody>
        ${m.promotions.map((p) => html`<tr><td><a href=${`#/runs/${p.id}`}>${fmtTime(p.start_time)}</a></td><td>${p.params.candidate}</td><td><code>${p.params.gate}</code></td>
          <td>${p.params.data}${p.params.split ? ` · ${p.params.split}` : ""}</td>
          <td><span class=${p.tags["hone.gate"] === "passed" ? "ok" : "bad"}>${p.tags["hone.gate"] || "?"}</span> · ${p.tags["hone.promotion"] || ""}</td>
          <td><pre class="account">${p.account}</pre></td></tr>`)}
      </tbody></table>`}
    <//>
  </div>`}<//>`;
}

function Lineage({ node }) {
  if (!node || typeof node !== "object") return null;
  const details = Object.entries(node).filter(([k, v]) => !["kind", "label", "children"].includes(k) && (typeof v !== "object" || v === null));
  return html`<li><strong>${node.kind}</strong> ${node.label}
    ${details.length > 0 && html`<span class="muted"> ${details.map(([k, v]) => `${k}: ${v}`).join(" · ")}</span>`}
    ${Array.isArray(node.children) && node.children.length > 0 && html`<ul>${node.children.map((c) => html`<${Lineage} node=${c} />`)}</ul>`}
  </li>`;
}

export function ModelVersionPage({ name, version }) {
  const found = useData(() => get(`/api/models/${enc(name)}/${enc(version)}`), [name, version]);
  return html`<${Loading} state=${found}>${(v) => {
    const sig = v.signature || {};
    const input = (sig.inputs || [])[0] || {};
    return html`<div>
      <header class="title"><h1>${v.ref}</h1><${Aliases} names=${v.aliases} /></header>
      <div class="grid2">
        <${Section} title="Version">
          <${KeyValues} rows=${[
            ["run", html`<a href=${`#/runs/${v.run_id}`}>${v.run_id}</a>`],
            ["checkpoint", `step ${v.checkpoint.step}`],
            ["trained on", v.dataset_version],
            ["task", sig.task],
            ["input", `${input.dtype} ${JSON.stringify(input.shape)}`],
            ["classes", sig.classes && sig.classes.join(", ")],
            ["created", `${fmtTime(v.created_at)} by ${v.created_by}`],
          ]} />
        <//>
        <${Section} title="Metrics"><${KeyValues} rows=${Object.entries(v.metrics || {}).map(([k, x]) => [k, fmtNumber(x)])} /><//>
      </div>
      <${Section} title="Exports (verified against the eager model)">
        ${v.exports.length === 0 ? html`<p class="muted">no exports</p>` : html`<table><thead><tr><th>format</th><th>size</th><th>verified</th><th>made</th></tr></thead><tbody>
          ${v.exports.map((e) => { const c = e.verification || {}; return html`<tr><td>${e.format}</td><td>${fmtBytes(e.size)}</td>
            <td>${c.rows !== undefined ? `${c.rows} rows of ${c.split || "the data"}: max |Δ| ${fmtNumber(c.max_abs_diff)} (tolerance ${fmtNumber(c.tolerance)})${c.labels_agree !== undefined ? `, labels agree on ${c.labels_agree}/${c.rows}` : ""}` : "–"}</td><td>${fmtTime(e.created_at)}</td></tr>`; })}
        </tbody></table>`}
      <//>
      <${Section} title="Lineage"><ul class="lineage"><${Lineage} node=${v.lineage} /></ul><//>
    </div>`;
  }}<//>`;
}
