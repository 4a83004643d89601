// Small pieces every page uses: loading data, showing an error, a key/value table, polling.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";

// Load with `load()` whenever `deps` change; `every` (ms) reloads in place (live pages).
// A poll waits for the one before it, and a failed poll keeps what was shown (the next one
// may succeed); only a failed first load shows the error.
export function useData(load, deps, every = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const generation = useRef(0);
  useEffect(() => {
    const mine = ++generation.current;
    let timer = null;
    let inFlight = false;
    const run = (first) => {
      if (inFlight) return;
      inFlight = true;
      if (first) setState((s) => ({ ...s, loading: true, error: null }));
      load().then(
        (data) => {
          inFlight = false;
          if (mine === generation.current) setState({ data, error: null, loading: false });
        },
        (error) => {
          inFlight = false;
          if (mine !== generation.current) return;
          setState((s) => (first || s.data === null ? { data: null, error, loading: false } : s));
        }
      );
    };
    run(true);
    if (every > 0) timer = setInterval(() => document.hidden || run(false), every);
    return () => {
      generation.current++;
      if (timer) clearInterval(timer);
    };
  }, [...deps, every]);
  return state;
}

export function Loading({ state, children }) {
  if (state.error) return html`<${ErrorBox} error=${state.error} />`;
  if (state.data === null) return html`<p class="muted">loading…</p>`;
  return children(state.data);
}

export function ErrorBox({ error }) {
  return html`<div class="error" role="alert">${String(error.message || error)}</div>`;
}

export function KeyValues({ rows }) {
  return html`<table class="kv">
    <tbody>
      ${rows
        .filter(([, v]) => v !== undefined && v !== null && v !== "")
        .map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}
    </tbody>
  </table>`;
}

export function Status({ status }) {
  return html`<span class=${`status status-${status}`}>${status}</span>`;
}

export function Section({ title, children, right }) {
  return html`<section class="card">
    <header><h2>${title}</h2>${right || null}</header>
    ${children}
  </section>`;
}
