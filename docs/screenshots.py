"""Take the README's screenshots of the web UI (docs/images/ui-*.png) from a workspace the
quickstart made: ``make screenshots`` (it runs the quickstart first when needed).

    python docs/screenshots.py WORKSPACE

Starts ``hone ui`` on the workspace, opens each page in Debian's Chromium (Playwright,
pointed at /usr/bin/chromium) and saves what a 1400x900 window shows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

HERE = Path(__file__).resolve().parent
PORT = 8799
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def first(client: httpx.Client, **params: str) -> str:
    return str(client.get("/api/runs", params={**params, "limit": 5}).json()["runs"][0]["id"])


def shoot(page: Page, url: str, name: str, ready: str) -> None:
    page.goto(url)
    page.locator(ready).first.wait_for(timeout=30_000)
    page.wait_for_timeout(800)  # fonts and the last chart settle
    page.screenshot(path=str(HERE / "images" / f"ui-{name}.png"))
    print(f"docs/images/ui-{name}.png")


def main(workspace: str) -> None:
    env = {**os.environ, "HONE_HOME": workspace}
    hone = Path(sys.executable).with_name("hone")
    server = subprocess.Popen([str(hone), "ui", "--port", str(PORT)], env=env)
    base = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = httpx.Client(base_url=base)
        trained = first(client, experiment="quickstart-digits")
        study = first(client, filter="tags.`hone.kind` = 'study'")
        trials = client.get("/api/runs", params={"filter": f"parent_run_id = '{study}'"}).json()
        pair = "&".join(f"run={r['id']}" for r in trials["runs"][:3])
        data = client.get("/api/datasets").json()[0]["latest"]["ref"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            shoot(page, f"{base}/#/runs", "runs", "table.runs tbody tr")
            shoot(page, f"{base}/#/runs/{trained}", "run", ".chart[data-drawn]")
            shoot(page, f"{base}/#/compare?{pair}", "compare", ".chart[data-drawn]")
            shoot(page, f"{base}/#/runs/{study}", "study", "svg.parallel")
            page.evaluate(
                "() => [...document.querySelectorAll('section.card h2')].find("
                "h => h.textContent.startsWith('Study')).scrollIntoView()"
            )
            page.screenshot(path=str(HERE / "images" / "ui-study.png"))
            shoot(page, f"{base}/#/dataset?ref={data}", "dataset", ".thumbs img")
            shoot(page, f"{base}/#/models/digits", "model", "table tbody tr")
            shoot(page, f"{base}/#/predictions/digits", "predictions", ".stat")
            shoot(page, f"{base}/#/label/digits", "label", "img.to-label")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1])
