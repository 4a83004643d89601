// One run: what it was, its inputs, artifacts and checkpoints, and a chart per metric
// (live while it runs); a study's run also shows its trials.
import { html } from "htm/preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { enc, get } from "../api.js";
import { Chart, ChartControls, VIEW, axisProps, xOf } from "../chart.js";
import { KeyValues, Loading, Section, Status, useData } from "../common.js";
import { fmtBytes, fmtDuration, fmtNumber, fmtTime, short } from "../format.js";
import { StudyView } from "./study.js";

const MAX_CHARTS = 24;
const LIVE_MS = 2000;

// A metric's chart: its whole history once, then (while the run runs, and once more when it
// stops) only the points past the last step, appended.
export function MetricChart({ runId, metric, view, live }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const busy = useRef(false);
  const wasLive = useRef(live);
  useEffect(() => {
    let gone = false;
    setData(null);
    setError(null);
    get(`/api/runs/${enc(runId)}/metric`, { key: metric }).then(
      (d) => !gone && setData(d),
      (e) => !gone && setError(e)
    );
    return () => { gone = true; };
  }, [runId, metric]);
  useEffect(() => {
    const ending = wasLive.current && !live;
    wasLive.current = live;
    if (!data || !(live || ending)) return undefined;
    let gone = false;
    const more = () => {
      if (busy.current || (document.hidden && !ending)) return;
      busy.current = true;
      const last = data.step.length ? data.step[data.step.length - 1] : null;
      get(`/api/runs/${enc(runId)}/metric`, { key: metric, after_step: last }).then(
        (d) => {
          busy.current = false;
          if (gone || !d.step.length) return;
          setData((old) => old && {
            ...old,
            step: old.step.concat(d.step),
            value: old.value.concat(d.value),
            time: old.time.concat(d.time),
          });
        },
        () => { busy.current = false; }
      );
    };
    if (ending) {
      more(); // the points logged since the last poll, before the run ended
      return () => { gone = true; };
    }
    const timer = setInterval(more, LIVE_MS);
    return () => { gone = true; clearInterval(timer); };
  }, [live, data, runId, metric]);
  const series = useMemo(
    () => (data ? [{ label: metric, x: xOf(data, view.axis), y: data.value }] : []),
    [data, view.axis, metric]
  );
  if (error) return html`<div class="chart-box"><p class="error">${error.message}</p></div>`;
  if (!data) return html`<div class="chart-box"><p class="muted">${metric}: loading…</p></div>`;
  return html`<div class="chart-box" data-metric=${metric}>
    <${Chart} title=${`${metric} (${data.step.length.toLocaleString("en-US")} points)`}
      series=${series} ...${axisProps(view)} />
  </div>`;
}

// An object's keys and values, sorted by key; unlike KeyValues, an empty value is shown
// (a param may be "").
function Table({ rows, empty }) {
  const keys = Object.keys(rows).sort();
  if (!keys.length) return html`<p class="muted">${empty}</p>`;
  return html`<table class="kv"><tbody>
    ${keys.map((k) => html`<tr><th>${k}</th><td>${rows[k]}</td></tr>`)}
  </tbody></table>`;
}

function RunView({ run }) {
  const [view, setView] = useState(VIEW);
  const live = run.status === "running";
  const metricKeys = Object.keys(run.metrics).sort();
  const tags = Object.fromEntries(
    Object.entries(run.tags).filter(([k, v]) => v !== "" || !k.startsWith("hone."))
  );
  const env = run.environment || {};
  return html`<div>
    <header class="title">
      <h1>${run.name || short(run.id)}</h1><${Status} status=${run.status} />
      <code class="muted">${run.id}</code>
    </header>
    <${Section} title=${`Metrics (${metricKeys.length})`}
      right=${html`<${ChartControls} value=${view} onChange=${setView} />`}>
      ${live && html`<p class="live">● live: charts update every ${LIVE_MS / 1000} s</p>`}
      <table class="kv metrics"><thead><tr><th>metric</th><th>latest</th><th>step</th></tr></thead><tbody>
        ${metricKeys.map((k) => html`<tr><th>${k}</th><td>${fmtNumber(run.metrics[k].value)}</td><td>${run.metrics[k].step}</td></tr>`)}
      </tbody></table>
      <div class="charts">
        ${metricKeys.slice(0, MAX_CHARTS).map((k) => html`<${MetricChart} key=${`${run.id}/${k}`} runId=${run.id} metric=${k} view=${view} live=${live} />`)}
      </div>
      ${metricKeys.length > MAX_CHARTS && html`<p class="muted">the first ${MAX_CHARTS} of ${metricKeys.length} metrics are drawn</p>`}
    <//>
    <div class="grid2">
      <${Section} title="Run">
        <${KeyValues} rows=${[
          ["experiment", html`<a href=${`#/runs?experiment=${enc(run.experiment)}`}>${run.experiment}</a>`],
          ["started", fmtTime(run.start_time)],
          ["ended", fmtTime(run.end_time)],
          ["duration", fmtDuration(run.duration)],
          ["parent", run.parent_run_id && html`<a href=${`#/runs/${run.parent_run_id}`}>${short(run.parent_run_id)}</a>`],
          ["git", run.git_commit && `${run.git_commit}${run.git_dirty ? " (dirty)" : ""}`],
          ["host", `${run.user || "?"}@${run.host || "?"}`],
          ["source", run.source],
          ...Object.keys(env).sort().map((k) => [k, typeof env[k] === "object" && env[k] !== null ? Object.entries(env[k]).map(([a, b]) => `${a} ${b}`).join(", ") : String(env[k])]),
        ]} />
      <//>
      <${Section} title=${`Params (${Object.keys(run.params).length})`}><div class="scroll"><${Table} rows=${run.params} empty="no params" /></div><//>
    </div>
    <div class="grid2">
      <${Section} title="Inputs">
        ${run.inputs.length === 0 ? html`<p class="muted">no dataset inputs</p>` : html`<ul>
          ${run.inputs.map((i) => html`<li><a href=${`#/dataset?ref=${enc(`${i.dataset}@${i.version_id}`)}`}>${i.dataset}@${short(i.version_id)}</a>${i.split ? ` · split ${i.split}` : ""}</li>`)}
        </ul>`}
      <//>
      <${Section} title="Artifacts">
        ${run.artifacts.length === 0 ? html`<p class="muted">no artifacts</p>` : html`<ul>
          ${run.artifacts.map((a) => html`<li><a href=${`/api/runs/${run.id}/artifacts/${a.path.split("/").map(enc).join("/")}`} download>${a.path}</a> <span class="muted">${fmtBytes(a.size)}</span></li>`)}
        </ul>`}
      <//>
    </div>
    ${run.checkpoints.length > 0 && html`<${Section} title=${`Checkpoints (${run.checkpoints.length})`}>
      <table><thead><tr><th>step</th><th>epoch</th><th>saved</th><th>size</th><th>metrics</th><th>blobs</th></tr></thead><tbody>
        ${run.checkpoints.map((c) => html`<tr><td>${c.step}</td><td>${c.epoch}</td><td>${fmtTime(c.created_at)}</td><td>${fmtBytes(c.size)}</td>
          <td>${Object.entries(c.metrics).map(([k, v]) => `${k} ${fmtNumber(v)}`).join(" · ")}</td>
          <td>${c.blobs_present ? "ok" : html`<span class="bad">missing</span>`}</td></tr>`)}
      </tbody></table>
    <//>`}
    ${run.tags["hone.kind"] === "study" && run.tags["hone.study"] && html`<${StudyView} name=${run.tags["hone.study"]} live=${live} />`}
    ${run.children.length > 0 && html`<${Section} title=${`Child runs (${run.children.length})`}>
      <table><thead><tr><th>name</th><th>status</th><th>started</th><th>metrics</th></tr></thead><tbody>
        ${run.children.map((c) => html`<tr><td><a href=${`#/runs/${c.id}`}>${c.name || short(c.id)}</a></td><td><${Status} status=${c.status} /></td><td>${fmtTime(c.start_time)}</td>
          <td>${Object.entries(c.metrics).slice(0, 4).map(([k, v]) => `${k} ${fmtNumber(v)}`).join(" · ")}</td></tr>`)}
      </tbody></table>
    <//>`}
    <${Section} title="Tags"><${Table} rows=${tags} empty="no tags" /><//>
    ${run.quarantined.length > 0 && html`<${Section} title="Set aside by the store">
      <ul>${run.quarantined.map((q) => html`<li>${fmtTime(q.quarantined_at)} ${q.kind}: ${q.reason}</li>`)}</ul>
    <//>`}
  </div>`;
}

export function RunPage({ id }) {
  return html`<${RunLoader} key=${id} id=${id} />`;
}

// One run's page (a new one for another run: no state carries over).
function RunLoader({ id }) {
  const [live, setLive] = useState(false);
  const found = useData(
    () => get(`/api/runs/${enc(id)}`).then((run) => {
      setLive(run.status === "running");
      return run;
    }),
    [id, live],
    live ? LIVE_MS : 0
  );
  return html`<${Loading} state=${found}>${(run) => html`<${RunView} run=${run} />`}<//>`;
}
