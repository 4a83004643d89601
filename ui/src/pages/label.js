// The labeling queue: unlabeled predictions, newest first, one at a time. Digit keys pick a
// class (the class itself when classes are 0-9, else its place in the list), Enter accepts
// the model's answer, → or s skips. Each label is recorded as POST /v1/feedback records it.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { enc, get, post } from "../api.js";
import { ErrorBox, Loading, useData } from "../common.js";
import { fmtNumber, fmtTime } from "../format.js";
import { replaceHash } from "../route.js";

const BATCH = 20;

// Classes that are the digits themselves (0-9, as numbers or text): a key picks its own.
const digitClasses = (classes) =>
  classes.every((c) => Number.isInteger(c) && c >= 0 && c <= 9) ||
  classes.every((c) => typeof c === "string" && /^[0-9]$/.test(c));

function keyFor(classes) {
  const digits = digitClasses(classes);
  return (key) => {
    if (!/^[0-9]$/.test(key)) return undefined;
    if (digits) return classes.find((c) => String(c) === key);
    const i = key === "0" ? 9 : Number(key) - 1;
    return i < classes.length ? classes[i] : undefined;
  };
}

function hint(classes, c, i) {
  if (digitClasses(classes)) return String(c);
  return i < 9 ? String(i + 1) : i === 9 ? "0" : "";
}

function Input({ item }) {
  if (item.picture) return html`<img class="to-label" src=${item.picture} alt="the input" />`;
  if (!item.values) return html`<p class="muted">the input is not stored (or its model version is gone)</p>`;
  return html`<table class="kv"><tbody>${item.values.map((v, i) => html`<tr><th>${item.names[i] || `#${i}`}</th><td class="num">${fmtNumber(v)}</td></tr>`)}</tbody></table>
    ${item.value_count > item.values.length && html`<p class="muted">${item.value_count - item.values.length} more values</p>`}`;
}

function Queue({ model, goal }) {
  const [tick, setTick] = useState(0);
  const [done, setDone] = useState([]);
  const [skipped, setSkipped] = useState([]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const found = useData(() => get(`/api/predictions/${enc(model)}/queue`, { limit: BATCH }), [model, tick]);
  const data = found.data;
  const left = data ? data.items.filter((it) => !done.includes(it.request_id) && !skipped.includes(it.request_id)) : [];
  const item = left[0];
  const classes = (item && item.classes) || [];
  const labeled = data ? data.new_labels + done.length : 0;

  // One label in flight at a time, whatever the keys do: state read by a key handler may be
  // a frame old, a ref is not (two keys in one frame once labeled one item twice).
  const inFlight = useRef(false);
  const given = useRef(new Set());
  const give = (label) => {
    if (!item || inFlight.current || given.current.has(item.request_id)) return;
    inFlight.current = true;
    given.current.add(item.request_id);
    setBusy(true);
    post("/api/feedback", { request_id: item.request_id, label }).then(
      () => {
        inFlight.current = false;
        setDone((d) => [...d, item.request_id]);
        setError(null);
        setBusy(false);
        if (left.length <= 1) { setDone([]); setSkipped([]); setTick((t) => t + 1); }
      },
      (e) => { inFlight.current = false; given.current.delete(item.request_id); setError(e); setBusy(false); }
    );
  };
  const skip = () => item && setSkipped([...skipped, item.request_id]);

  // The key handler is registered once and reads this render's item through a ref, never
  // a closure from an earlier render.
  const latest = useRef(null);
  latest.current = { item, classes, give, skip };
  useEffect(() => {
    const onKey = (e) => {
      if (e.target && ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName)) return;
      const now = latest.current;
      if (e.key === "Enter") { e.preventDefault(); now.item && now.give(now.item.prediction); return; }
      if (e.key === "ArrowRight" || e.key === "s") { e.preventDefault(); now.skip(); return; }
      const c = keyFor(now.classes)(e.key);
      if (c !== undefined) { e.preventDefault(); now.give(c); }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  return html`<${Loading} state=${found}>${() => html`<div class="labeling">
    <div class="progress" title="labels no harvest has taken yet, toward the loop's --min-new-labels">
      <div class="fill" style=${{ width: `${Math.min(100, (100 * labeled) / Math.max(1, goal))}%` }}></div>
      <span id="label-progress">${labeled} / ${goal} new labels</span>
    </div>
    <p class="muted">${fmtNumber(Math.max(0, data.unlabeled - done.length))} unlabeled · labeled here: <span id="labeled-here">${done.length}</span></p>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${!item ? (skipped.length && data.unlabeled > done.length
      ? html`<p>you skipped every prediction of this batch. <button onClick=${() => { setDone([]); setSkipped([]); setTick((t) => t + 1); }}>start over</button></p>`
      : html`<p>nothing to label: every recorded prediction of ${model} has a label</p>`) : html`<div class="item" data-request=${item.request_id}>
      <div class="input"><${Input} item=${item} /></div>
      <div class="answer">
        <p>model @${item.version} answered <strong class="predicted">${String(item.prediction)}</strong>
          <span class="muted"> · ${fmtTime(item.at)} · ${item.request_id}</span></p>
        <div class="classes">${classes.map((c, i) => html`<button class=${c === item.prediction ? "predicted" : ""} disabled=${busy} onClick=${() => give(c)}>
          <kbd>${hint(classes, c, i)}</kbd> ${String(c)}
          ${item.probabilities && item.probabilities[i] !== null && item.probabilities[i] !== undefined ? html`<small> ${(100 * item.probabilities[i]).toFixed(0)}%</small>` : ""}</button>`)}</div>
        <p class="muted">keys: digits pick a class · Enter accepts the model's answer · → skips</p>
      </div>
    </div>`}
  </div>`}<//>`;
}

export function LabelPage({ model, params }) {
  const goal = Math.max(1, Math.floor(Number(params.get("goal") || 100)) || 100);
  const models = useData(() => get("/api/predictions"), []);
  return html`<div>
    <header class="title"><h1>Label</h1>
      <${Loading} state=${models}>${(list) => html`<select value=${model} onChange=${(e) => replaceHash(`/label/${e.target.value}`, { goal })}>
        <option value="">choose a model</option>${list.map((m) => html`<option value=${m.model}>${m.model} (${fmtNumber(m.predictions - m.labeled)} unlabeled)</option>`)}</select>`}<//>
      <label>goal (--min-new-labels) <input type="number" min="1" value=${goal} size="6" onChange=${(e) => replaceHash(`/label/${model}`, { goal: e.target.value })} /></label>
    </header>
    ${model ? html`<${Queue} key=${model} model=${model} goal=${goal} />` : html`<p class="muted">choose a model whose predictions to label</p>`}
  </div>`;
}
