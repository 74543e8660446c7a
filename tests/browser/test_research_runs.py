"""Research runs in a real browser against the Procfile's web and research roles: staff queue a
run through the form (a bad configuration first: its error names the field), watch it run, and
read its report — the facts table, a plot — and download a file; a participant without staff is
refused and sees no link."""

import json
import re

import pytest
from playwright.sync_api import expect

from .conftest import SCREENSHOTS, login, start_browser_stack

pytestmark = pytest.mark.slow
TIMEOUT = 20_000  # ms: generous, the machine is shared
RUN_TIMEOUT = 90_000  # the run itself: ~5-10 s of CPU on a quiet machine

BAD_CONFIG = "symbol: ACME\nagents:\n  - {name: maker, strategy: hft, count: 1}\n"


@pytest.fixture(scope="module")
def research_stack(tmp_path_factory):
    runs = tmp_path_factory.mktemp("research-runs")
    started = start_browser_stack(
        tmp_path_factory, ["web", "research"], env={"RESEARCH_RUNS_DIR": str(runs)}
    )
    try:
        yield started
    finally:
        started.stop()


def test_staff_queue_a_run_watch_it_and_read_its_report(browser, research_stack):
    page = login(browser, research_stack, "admin", viewport={"width": 1300, "height": 1000})
    page.get_by_role("link", name="Research").click()
    expect(page.get_by_role("heading", name="Research runs")).to_be_visible()
    page.get_by_role("link", name="New run").first.click()

    # A configuration with an unknown strategy: refused on its field, naming the field inside it.
    page.get_by_label("A configuration").check()
    expect(page.locator("#id_preset")).to_be_hidden()  # only the chosen source's field
    page.fill("#id_config_text", BAD_CONFIG)
    page.get_by_role("button", name="Queue run").click()
    error = page.locator('[data-field-error="config_text"]')
    expect(error).to_contain_text("invalid configuration: agents[0].strategy: unknown strategy")
    expect(page.locator("#id_config_text")).to_have_value(BAD_CONFIG)  # kept to be mended

    # A preset instead: half an hour of rmsc04, long enough to be seen running.
    page.get_by_label("A preset").check()
    page.select_option("#id_preset", "rmsc04")
    page.fill("#id_seed", "5")
    page.fill("#id_start", "09:30")
    page.fill("#id_end", "10:00")
    page.get_by_role("button", name="Queue run").click()
    expect(page).to_have_url(re.compile(r"/research/runs/\d+/$"))
    expect(page.locator(".message")).to_contain_text("queued")

    # The page follows the run by itself (polling), then shows its report (it reloads once).
    state = page.locator("h1 [data-run-state]")
    expect(state).to_have_text("Running", timeout=RUN_TIMEOUT)
    expect(page.locator("[data-run-total]")).to_have_text("1800")
    expect(state).to_have_text("Done", timeout=RUN_TIMEOUT)
    expect(page.locator("[data-run-percent]")).to_have_text("100 %")

    facts = page.locator("[data-facts] tr[data-fact]")
    expect(facts).to_have_count(8)  # the four facts and the four deeper ones
    expect(facts.first).to_contain_text("Heavy tails")
    expect(page.locator("[data-facts]")).to_contain_text("(deeper)")
    expect(page.locator("[data-facts-counts]")).to_contain_text(re.compile(r"\d+ lots traded"))
    plot = page.locator('[data-plots] img[alt="plots/price_path.png"]')
    expect(plot).to_be_visible()
    plot.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 100", arg=plot.element_handle(), timeout=TIMEOUT
    )

    with page.expect_download() as download:
        page.locator('a[data-file="summary.json"]').click()
    summary = json.loads(download.value.path().read_text())
    assert summary["seed"] == 5 and summary["session"]["end"].startswith("10:00")
    files = page.locator("[data-files] a[data-file]")
    expect(files.filter(has_text="manifest.json")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "research-run.png"), full_page=True)

    page.get_by_role("link", name="All runs").click()
    row = page.locator("[data-runs] tbody tr").first
    expect(row).to_contain_text("preset rmsc04")
    expect(row.locator("[data-run-state]")).to_have_text("Done")
    page.context.close()


def test_a_participant_is_refused_the_research_pages(browser, research_stack):
    page = login(browser, research_stack, "demo")
    expect(page.get_by_role("link", name="Trade")).to_be_visible()
    expect(page.get_by_role("link", name="Research")).to_have_count(0)
    for path in ["/research/runs/", "/research/runs/new/", "/research/runs/1/files/summary.json"]:
        assert page.goto(path).status == 403, path
    page.context.close()
