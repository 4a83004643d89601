// Bundles the UI into the Python package (src/hone/server/static/): app.js (Preact, htm and
// uPlot included, minified) and app.css (uPlot's styles and ours), beside index.html.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "hone", "server", "static");

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
await build({
  entryPoints: { app: join(here, "src", "main.js"), "app-style": join(here, "src", "style.css") },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  outdir: join(out, "assets"),
  entryNames: "[name]",
  legalComments: "linked",
  logLevel: "warning",
});
// esbuild names a CSS entry after itself; the page links app.css.
copyFileSync(join(out, "assets", "app-style.css"), join(out, "assets", "app.css"));
rmSync(join(out, "assets", "app-style.css"));
rmSync(join(out, "assets", "app-style.js"), { force: true });
copyFileSync(join(here, "index.html"), join(out, "index.html"));
// /api/docs: Swagger UI's own files (from swagger-ui-dist, pinned in the lockfile) and the
// three lines that start it, as files: the Content-Security-Policy allows no inline script.
const swagger = join(here, "node_modules", "swagger-ui-dist");
mkdirSync(join(out, "assets", "swagger"), { recursive: true });
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
  copyFileSync(join(swagger, name), join(out, "assets", "swagger", name));
}
copyFileSync(join(here, "src", "api-docs.js"), join(out, "assets", "api-docs.js"));
copyFileSync(join(here, "docs.html"), join(out, "docs.html"));
console.log(`hone ui: built ${out}`);
