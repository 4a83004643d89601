// hone's web UI: one page, hash-routed; every page reads the JSON API under /api.
import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getSession } from "./api.js";
import { ErrorBox } from "./common.js";
import { ComparePage } from "./pages/compare.js";
import { DatasetPage, DatasetsPage, DiffPage, VersionPage } from "./pages/datasets.js";
import { LabelPage } from "./pages/label.js";
import { ModelPage, ModelsPage, ModelVersionPage } from "./pages/models.js";
import { PredictionsPage, PredictionsModelPage } from "./pages/predictions.js";
import { RunPage } from "./pages/run.js";
import { RunsPage } from "./pages/runs.js";
import { useRoute } from "./route.js";

function page({ parts, params }) {
  const [head, ...rest] = parts;
  switch (head) {
    case "runs":
      return rest.length ? html`<${RunPage} id=${rest[0]} />` : html`<${RunsPage} params=${params} />`;
    case "compare":
      return html`<${ComparePage} ids=${params.getAll("run")} />`;
    case "datasets":
      if (rest.length === 0) return html`<${DatasetsPage} />`;
      return html`<${DatasetPage} name=${rest[0]} />`;
    case "dataset":
      return html`<${VersionPage} ref_=${params.get("ref") || ""} params=${params} />`;
    case "diff":
      return html`<${DiffPage} old=${params.get("old") || ""} new_=${params.get("new") || ""} />`;
    case "models":
      if (rest.length === 0) return html`<${ModelsPage} />`;
      if (rest.length === 1) return html`<${ModelPage} name=${rest[0]} />`;
      return html`<${ModelVersionPage} name=${rest[0]} version=${rest[1]} />`;
    case "predictions":
      return rest.length
        ? html`<${PredictionsModelPage} model=${rest[0]} params=${params} />`
        : html`<${PredictionsPage} />`;
    case "label":
      return html`<${LabelPage} model=${rest[0] || ""} params=${params} />`;
    default:
      return html`<${ErrorBox} error=${`no page #/${parts.join("/")}`} />`;
  }
}

const NAV = [
  ["runs", "Runs"],
  ["datasets", "Datasets"],
  ["models", "Models"],
  ["predictions", "Predictions"],
  ["label", "Label"],
];

function App() {
  const route = useRoute();
  const [session, setSession] = useState(null);
  useEffect(() => {
    getSession().then(setSession, () => setSession(null));
  }, []);
  const here = route.parts[0] === "compare" ? "runs" : route.parts[0] === "dataset" || route.parts[0] === "diff" ? "datasets" : route.parts[0];
  return html`<div class="app">
    <nav class="top">
      <a class="brand" href="#/runs">hone</a>
      ${NAV.map(([key, label]) => html`<a href=${`#/${key}`} class=${here === key ? "here" : ""}>${label}</a>`)}
      <span class="grow"></span>
      ${session && html`<span class="muted" title=${session.store}>${session.workspace}</span>`}
      <a href="/api/docs" target="_blank" rel="noopener">API</a>
    </nav>
    <main>${page(route)}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
