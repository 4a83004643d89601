"""The UI in a real browser (Debian's Chromium, driven by Playwright) against a real
``hone ui``: the runs table and its filter, a run's charts, a comparison, a dataset, the
labeling queue by keyboard, escaping, and the token off loopback."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

import hone
from hone.models.workspace import opened
from hone.predictions import give_feedback
from hone.predictions.queries import list_predictions
from hone.store.schema import prediction_feedback
from tests.ui.conftest import XSS_NAME, XSS_PARAM, StartUi, Ui, UiWorkspace

pytestmark = pytest.mark.slow


def test_runs_table_filters_sorts_and_shows_errors_in_place(page: Any, ui: Ui) -> None:
    page.goto(f"{ui.url}/#/runs")
    page.get_by_role("link", name="sweep", exact=True).click()
    rows = page.locator("table.runs tbody tr")
    page.wait_for_function("() => location.hash.includes('experiment=sweep')")
    page.wait_for_function("() => document.querySelectorAll('table.runs tbody tr').length === 3")
    page.fill("form.filter input", "params.lr = '0.01'")
    page.press("form.filter input", "Enter")
    page.wait_for_function("() => document.querySelectorAll('table.runs tbody tr').length === 1")
    assert rows.first.locator("td").nth(1).inner_text() == "sweep-1"
    page.locator(".pager", has_text="1\u20131 of 1").wait_for()  # the count, asked beside
    # A broken filter: the server's message, and a caret under where it went wrong.
    page.fill("form.filter input", "metrics.acc > 0.5 garbage")
    page.press("form.filter input", "Enter")
    error = page.locator(".filter-error")
    error.wait_for()
    assert "expected 'and', 'or' or the end at position 18" in error.inner_text()
    caret = page.inner_text(".filter-error pre.caret").split("\n")
    assert caret[1] == " " * 18 + "^"
    # Sorting by a metric column, both ways.
    page.fill("form.filter input", "")
    page.press("form.filter input", "Enter")
    page.wait_for_function("() => document.querySelectorAll('table.runs tbody tr').length === 3")
    page.locator("th", has_text=re.compile(r"^metrics\.acc")).click()
    page.wait_for_function("() => location.hash.includes('order=')")
    page.wait_for_function(
        "() => document.querySelector('table.runs tbody tr td:nth-child(2)').innerText"
        " === 'sweep-1'"
    )
    page.locator("th", has_text=re.compile(r"^metrics\.acc")).click()
    page.wait_for_function(
        "() => document.querySelector('table.runs tbody tr td:nth-child(2)').innerText"
        " !== 'sweep-1'"
    )


def test_a_run_page_draws_its_charts(page: Any, ui: Ui, ui_workspace: UiWorkspace) -> None:
    page.goto(f"{ui.url}/#/runs/{ui_workspace.trained}")
    chart = page.locator(".chart-box[data-metric='val/acc'] .chart[data-drawn]")
    chart.wait_for()
    assert int(chart.get_attribute("data-drawn")) >= 4
    canvas = chart.locator("canvas")
    assert canvas.evaluate("c => c.width > 100 && c.height > 100")
    # Something was drawn: the canvas holds pixels that are not all blank.
    drawn = canvas.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"
    )
    assert drawn > 200
    # Its inputs link to their dataset versions; the log scale and time axis redraw.
    assert page.locator("a[href*='#/dataset?ref=digits']").count() >= 1
    page.check("text=log scale")
    page.select_option(".controls select", "time")
    page.locator(
        ".chart-box[data-metric='val/acc'] .chart[data-scale='log'][data-axis='time'][data-drawn]"
    ).wait_for()
    page.select_option(".controls select", "relative")
    page.locator(
        ".chart-box[data-metric='val/acc'] .chart[data-axis='relative'][data-drawn]"
    ).wait_for()
    assert page.locator("text=Checkpoints").count() == 1


def test_comparing_two_runs_overlays_their_curves(
    page: Any, ui: Ui, ui_workspace: UiWorkspace
) -> None:
    page.goto(f"{ui.url}/#/runs?experiment=sweep")
    for name in ("sweep-0", "sweep-1"):
        page.get_by_label(f"select {name}").check()
    page.click("#compare")
    chart = page.locator(".chart-box[data-metric='loss'] .chart[data-drawn]")
    chart.wait_for()
    assert chart.get_attribute("data-drawn") == "100"  # 50 points of each run
    legend = page.locator(".chart-box[data-metric='loss'] .u-legend")
    assert "sweep-0" in legend.inner_text() and "sweep-1" in legend.inner_text()
    differs = page.locator("table.compare tr.differs th")
    assert "params.lr" in differs.all_inner_texts()
    assert "params.opt" not in differs.all_inner_texts()
    assert page.locator("table.compare th", has_text="params.opt").count() == 0
    page.uncheck("text=only differences")  # every row, the equal ones unmarked
    assert page.locator("table.compare tr:not(.differs) th", has_text="params.opt").count() == 1


def test_a_dataset_version_shows_splits_labels_features_and_thumbnails(page: Any, ui: Ui) -> None:
    page.goto(f"{ui.url}/#/datasets")
    page.get_by_role("link", name="digits", exact=True).click()
    tree = page.locator("table.tree tbody tr")
    tree.first.wait_for()
    assert tree.count() >= 2  # the import and its normalized child
    tree.first.locator("a").click()
    page.locator("text=Rows per split").wait_for()
    assert page.locator(".label-dist .dist").count() == 3
    thumbs = page.locator(".thumbs img")
    thumbs.first.wait_for()
    assert thumbs.count() == 48
    assert thumbs.first.evaluate("img => img.complete && img.naturalWidth >= 64")
    page.locator("table.features tbody tr").nth(10).click()
    page.locator(".histogram[data-feature='pixel_1_2'] .hbars span").first.wait_for()
    # Two versions picked: their diff.
    page.go_back()
    boxes = page.locator("table.tree input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#diff")
    page.locator("text=Rows by split").wait_for()


def test_labeling_by_keyboard_records_feedback_as_the_api_does(
    page: Any, ui: Ui, ui_workspace: UiWorkspace
) -> None:
    ws = opened(ui_workspace.ws)
    before = {p.request_id for p in list_predictions(ws.db, "digits", labeled=True, limit=1000)}
    page.goto(f"{ui.url}/#/label/digits?goal=10")
    item = page.locator(".item[data-request]")
    item.wait_for()
    assert page.locator("img.to-label").evaluate("img => img.naturalWidth >= 64")
    given: dict[str, int] = {}
    for key in ("3", "7", "Enter"):
        request_id = item.get_attribute("data-request")
        predicted = int(page.inner_text("strong.predicted"))
        page.keyboard.press(key)
        given[request_id] = predicted if key == "Enter" else int(key)
        page.wait_for_function(
            "id => { const el = document.querySelector('.item[data-request]');"
            " return !el || el.dataset.request !== id; }",
            arg=request_id,
        )
    assert page.inner_text("#labeled-here") == "3"
    labeled = {
        p.request_id: p.label for p in list_predictions(ws.db, "digits", labeled=True, limit=1000)
    }
    assert {k: labeled[k] for k in given} == given
    assert set(labeled) - before == set(given)
    with ws.db.read() as conn:
        sources = conn.execute(
            prediction_feedback.select().where(prediction_feedback.c.request_id.in_(list(given)))
        ).all()
    assert sorted(row.source for row in sources) == ["ui", "ui", "ui"]
    assert "new labels" in page.inner_text("#label-progress")


def test_user_strings_render_as_text(page: Any, ui: Ui, ui_workspace: UiWorkspace) -> None:
    page.goto(f"{ui.url}/#/runs?experiment=sweep")
    page.get_by_role("link", name=XSS_NAME).wait_for()
    page.goto(f"{ui.url}/#/runs/{ui_workspace.xss}")
    page.locator("h1", has_text=XSS_NAME).wait_for()
    assert page.locator("h1").first.inner_text() == XSS_NAME
    assert page.locator("text=" + XSS_PARAM).count() == 1
    assert page.locator("text=<b>bold</b>").count() == 1
    # Nothing the strings hold became an element: no script, no image, no bold.
    assert page.locator("main script, main img, main b").count() == 0
    # (the page fixture fails the test on any alert dialog or script error)


def test_off_loopback_the_ui_needs_its_token(page: Any, ui_of: StartUi) -> None:
    token = "t0ken-for-the-browser-test"
    guarded = ui_of(host="0.0.0.0", token=token)
    response = page.goto(f"{guarded.url}/#/runs")
    assert response.status == 401
    assert page.request.get(f"{guarded.url}/api/runs").status == 401
    page.goto(f"{guarded.url}/login?token=wrong-token-for-this-ui")
    assert "not this UI's" in page.inner_text("body")
    page.goto(f"{guarded.url}/login?token={token}")
    page.locator("table.runs tbody tr").first.wait_for()
    assert page.url.rstrip("/").endswith("/#/runs") or page.url.endswith("/")


def test_a_running_runs_charts_grow_without_a_reload(
    page: Any, ui: Ui, ui_workspace: UiWorkspace
) -> None:
    run = hone.start_run("live", name="growing", workspace=ui_workspace.ws)
    try:
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()
        page.goto(f"{ui.url}/#/runs/{run.id}")
        chart = page.locator(".chart-box[data-metric='loss'] .chart[data-drawn='5']")
        chart.wait_for()
        page.locator(".live").wait_for()
        page.evaluate("() => { window.__stayed = true; }")
        for step in range(5, 12):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()
        page.locator(".chart-box[data-metric='loss'] .chart[data-drawn='12']").wait_for()
        for step in range(12, 15):  # the last points, logged just before the run ends
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    finally:
        run.end()
    page.locator(".status-finished").wait_for()
    page.locator(".chart-box[data-metric='loss'] .chart[data-drawn='15']").wait_for()
    assert page.evaluate("() => window.__stayed === true")  # the same page: no reload


def test_the_predictions_page_follows_new_labels(
    page: Any, ui: Ui, ui_workspace: UiWorkspace
) -> None:
    page.goto(f"{ui.url}/#/predictions/digits")
    labeled = page.locator(".stat", has_text="labeled").first.locator(".value")
    labeled.wait_for()
    before = int(labeled.inner_text().replace(",", ""))
    ws = opened(ui_workspace.ws)
    waiting = list_predictions(ws.db, "digits", labeled=False, limit=1)
    give_feedback(ws.db, waiting[0].request_id, 0, source="test")
    page.wait_for_function(
        "n => Number(document.querySelectorAll('.stat .value')[1].innerText.replace(/,/g, ''))"
        " === n",
        arg=before + 1,
        timeout=20_000,
    )
    assert page.locator(".chart-box .chart[data-drawn]").count() == 4


def test_a_studys_run_shows_its_history_and_parallel_coordinates(
    page: Any, ui: Ui, ui_workspace: UiWorkspace
) -> None:
    page.goto(f"{ui.url}/#/runs/{ui_workspace.study}")
    lines = page.locator("svg.parallel polyline")
    lines.first.wait_for()
    assert lines.count() == 10  # one line a complete trial
    axes = page.locator("svg.parallel .axis-label").all_text_contents()
    assert axes == ["width", "x", "value"]
    study = page.locator("section.card", has=page.locator("h2", has_text="Study bowl"))
    history = study.locator(".chart[data-drawn='10']")  # every trial's value, the best so far
    assert history.count() == 2
    assert study.locator("text=10 complete").count() == 1
    assert study.locator("table tr", has_text="complete").count() == 10


def test_the_api_docs_page_works_under_the_content_security_policy(page: Any, ui: Ui) -> None:
    page.goto(f"{ui.url}/api/docs")
    page.locator(".opblock-summary-path", has_text="/api/runs").first.wait_for()
    assert page.locator(".opblock").count() >= 15


def test_a_malformed_address_is_a_message_not_a_blank_page(page: Any, ui: Ui) -> None:
    page.goto(f"{ui.url}/#/runs/%")
    page.locator(".error", has_text="is not a run id").wait_for()
    page.goto(f"{ui.url}/#/runs?offset=-5&order=bogus")
    page.locator(".error", has_text="order_by clause 'bogus'").wait_for()
    assert page.locator(".filter-error").count() == 0  # a sort is no filter
    page.click("text=sort newest first instead")
    page.locator("table.runs tbody tr").first.wait_for()


def test_two_keys_in_one_frame_label_one_prediction(
    page: Any, ui: Ui, ui_workspace: UiWorkspace
) -> None:
    ws = opened(ui_workspace.ws)
    page.goto(f"{ui.url}/#/label/digits")
    item = page.locator(".item[data-request]")
    item.wait_for()
    first = item.get_attribute("data-request")
    page.evaluate(
        "() => { for (const key of ['3', '5']) "
        "window.dispatchEvent(new KeyboardEvent('keydown', {key})); }"
    )
    page.wait_for_function(
        "id => document.querySelector('.item[data-request]').dataset.request !== id", arg=first
    )
    page.wait_for_timeout(500)
    assert page.inner_text("#labeled-here") == "1"
    with ws.db.read() as conn:
        given = conn.execute(
            prediction_feedback.select().where(prediction_feedback.c.request_id == first)
        ).all()
    assert [row.label for row in given] == ["3"]


def test_a_restarted_ui_takes_labels_from_an_open_page(
    page: Any, ui_of: StartUi, ui_workspace: UiWorkspace
) -> None:
    first = ui_of()
    port = httpx.URL(first.url).port
    page.goto(f"{first.url}/#/label/digits")
    item = page.locator(".item[data-request]")
    item.wait_for()
    page.keyboard.press("4")
    page.wait_for_function("() => document.querySelector('#labeled-here').innerText === '1'")
    first.stop()
    ui_of(port=port)  # a new process: a new CSRF token
    page.keyboard.press("4")
    page.wait_for_function("() => document.querySelector('#labeled-here').innerText === '2'")
    assert page.locator(".error").count() == 0


def test_the_runs_table_follows_a_running_run(page: Any, ui: Ui, ui_workspace: UiWorkspace) -> None:
    run = hone.start_run("following", name="still going", workspace=ui_workspace.ws)
    try:
        run.flush()
        page.goto(f"{ui.url}/#/runs?experiment=following")
        row = page.locator("table.runs tbody tr", has_text="still going")
        row.locator(".status-running").wait_for()
        page.evaluate("() => { window.__stayed = true; }")
    finally:
        run.end()
    row.locator(".status-finished").wait_for(timeout=20_000)
    assert page.evaluate("() => window.__stayed === true")  # no reload
