"""The pages in a real browser (the system's Chromium) against a real stack: uvicorn, the engine
worker, the recorder, the bridge and Redis. Orders the test submits through the REST API move
the market the browser shows."""

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from .conftest import SCREENSHOTS, login

pytestmark = pytest.mark.slow
TIMEOUT = 20_000  # ms: generous, the machine is shared


def test_dashboard_shows_a_live_book_trades_and_a_moving_price(browser, stack, trader):
    page = login(browser, stack, "demo", viewport={"width": 1400, "height": 1000})
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=TIMEOUT
    )
    expect(page.locator("[data-ladder-empty]")).to_be_visible()

    for level in range(5):
        stack.place(trader, "sell", f"{101 + level}.00", str(10 + level))
        stack.place(trader, "buy", f"{99 - level}.00", str(10 + level))
    ladder = page.locator("[data-ladder] tbody tr")
    expect(ladder).to_have_count(10, timeout=TIMEOUT)
    expect(page.locator('[data-bbo="bid"]')).to_have_text("99.00", timeout=TIMEOUT)
    expect(page.locator('[data-bbo="ask"]')).to_have_text("101.00", timeout=TIMEOUT)
    expect(page.locator('[data-bbo="spread"]')).to_have_text("2.00")

    # Trades at rising prices: the tape fills, the last price moves, the candle chart starts.
    prices = []
    for step in range(4):
        price = f"{101 + step}.00"
        # Takes the whole offer at that price (the trader's own: self-trade prevention off).
        stack.place(trader, "buy", price, str(10 + step), stp="none")
        prices.append(price)  # shown to the tick, as placed: "101.00"
        expect(page.locator('[data-bbo="last"]')).to_have_text(prices[-1], timeout=TIMEOUT)
    expect(page.locator("[data-tape] tr")).to_have_count(4, timeout=TIMEOUT)
    expect(page.locator("[data-tape] tr").first).to_contain_text("104")
    expect(page.locator("[data-price-empty]")).to_be_hidden()
    expect(page.locator("[data-price-chart] canvas").first).to_be_visible()
    expect(page.locator("[data-depth-chart] canvas").first).to_be_visible()
    expect(page.locator('[data-stat="volume"]')).not_to_have_text("—", timeout=TIMEOUT)

    # The exchange card: last, high and low to the tick; the charts described in words, to the
    # tick (uPlot's own axis wrote "99.7", "100", "101.6").
    expect(page.locator('[data-stat="last_price"]')).to_have_text("104.00")
    expect(page.locator('[data-stat="high"]')).to_have_text("104.00", timeout=TIMEOUT)
    expect(page.locator('[data-stat="low"]')).to_have_text("101.00")
    expect(page.locator("[data-depth-chart]")).to_have_attribute(
        "aria-label", re.compile(r"^Depth: bids 95\.00 to 99\.00, asks 105\.00 to 105\.00\.$")
    )
    expect(page.locator("[data-price-chart]")).to_have_attribute(
        "aria-label", re.compile(r"last 104\.00"), timeout=TIMEOUT
    )
    # One clock: the tape's times are the viewer's, the zone named, UTC on hover.
    expect(page.locator(".tape thead [data-zone]")).to_have_text("UTC")
    assert page.locator("[data-tape] tr td").first.get_attribute("title").endswith(" UTC")
    # Candle intervals: 15 s candles on a click, remembered.
    page.click('[data-interval="15s"]')
    expect(page.locator("[data-price-chart]")).to_have_attribute("data-shown-interval", "15s")
    expect(page.locator('[data-interval="15s"]')).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.locator("[data-price-chart]")).to_have_attribute(
        "data-shown-interval", "15s", timeout=TIMEOUT
    )
    page.click('[data-interval="1m"]')
    page.context.close()


def test_one_clock_in_the_viewers_time_zone_the_admin_too(browser, stack, trader):
    """A viewer in New York sees New York times everywhere (in December five hours behind UTC),
    the tape's with their UTC time on hover, and the admin's in the same zone, not the server's
    UTC."""
    status, trades = stack.api(trader, "GET", "instruments/ACME/trades/")
    assert status == 200 and trades["results"], trades
    page = login(
        browser,
        stack,
        "admin",
        viewport={"width": 1400, "height": 1000},
        timezone_id="America/New_York",
    )
    expect(page.locator(".tape thead [data-zone]")).to_have_text("UTC\u221205:00", timeout=TIMEOUT)
    first = page.locator("[data-tape] tr td").first
    expect(first).to_have_attribute("title", re.compile(r" UTC$"), timeout=TIMEOUT)
    utc_hour = int(first.get_attribute("title")[11:13])
    assert int(first.inner_text()[:2]) == (utc_hour - 5) % 24
    page.goto("/admin/exchange/trade/")
    executed = datetime.fromisoformat(trades["results"][0]["executed_at"].replace("Z", "+00:00"))
    local = executed.astimezone(ZoneInfo("America/New_York"))
    hour = local.strftime("%I").lstrip("0")
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text(re.compile(rf"{hour}:{local:%M} [ap]\.m\."))
    page.context.close()


def test_the_pages_are_accessible(browser, stack):
    """One main heading; the price bar is not a live region (it was announced about ten times a
    second); in dark mode the filled buttons keep 4.5:1 (computed from the page's styles); an
    icon at /favicon.ico."""
    page = login(
        browser, stack, "demo", viewport={"width": 1400, "height": 1000}, color_scheme="dark"
    )
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("h1")).to_contain_text("ACME")
    assert page.locator(".market-bar [aria-live]").count() == 0
    assert page.locator('.market-bar [role="status"]').count() == 1  # the connection, rarely
    for selector in ('[data-interval][aria-pressed="true"]',):
        assert _contrast(page, selector) >= 4.5, selector
    page.goto("/trade/")
    page.locator(".seg-buy").click()
    for selector in ("[data-ticket-submit]", ".seg-buy"):
        assert _contrast(page, selector) >= 4.5, selector
    favicon = page.request.get("/favicon.ico")
    assert favicon.status == 200 and "svg" in favicon.headers["content-type"]
    page.context.close()


def _contrast(page, selector: str) -> float:
    """WCAG's contrast ratio of an element's text against its background, from computed styles."""
    return page.evaluate(
        r"""(selector) => {
          const node = document.querySelector(selector);
          const style = getComputedStyle(node);
          const rgb = (text) => text.match(/[\d.]+/g).slice(0, 3).map(Number);
          const lum = ([r, g, b]) => {
            const f = (c) => {
              c /= 255;
              return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
            };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
          };
          const a = lum(rgb(style.color)), b = lum(rgb(style.backgroundColor));
          return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        }""",
        selector,
    )


def test_the_dashboard_shows_a_volatility_pause(browser, stack, trader):
    # GLOBEX, which no other test trades: the demo's guard pauses it after a 5 % move.
    page = login(browser, stack, "demo", viewport={"width": 1400, "height": 1000})
    page.goto(f"{stack.url}/?symbol=GLOBEX")
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=TIMEOUT
    )
    badge = page.locator("[data-paused]")
    expect(badge).to_be_hidden()
    stack.place(trader, "sell", "42.50", "10", symbol="GLOBEX")
    stack.place(trader, "buy", "42.50", "10", symbol="GLOBEX", stp="none")
    stack.place(trader, "sell", "45.00", "10", symbol="GLOBEX")
    stack.place(trader, "buy", "45.00", "10", symbol="GLOBEX", stp="none")  # +5.9 %
    expect(badge).to_be_visible(timeout=TIMEOUT)
    expect(badge).to_contain_text("Paused")
    status, body = stack.api(trader, "GET", "instruments/GLOBEX/book/")
    assert status == 200 and body["paused_until"] is not None
    page.context.close()


def test_the_dashboard_works_on_a_phone(browser, stack):
    page = login(browser, stack, "demo", viewport={"width": 390, "height": 844}, is_mobile=True)
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=TIMEOUT
    )
    expect(page.locator("[data-ladder] tbody tr").first).to_be_visible(timeout=TIMEOUT)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the phone"
    # The agents' numbers are cards on a phone: every agent's equity within the screen's width.
    equity = page.locator('[data-leaderboard] td[data-label="Equity"]').first
    expect(equity).to_be_visible(timeout=TIMEOUT)
    box = equity.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.goto("/trade/")
    expect(page.locator("[data-ticket-submit]")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the trading page is {overflow}px wider than the phone"
    page.context.close()


def submit_far_from_the_market(page):
    """Submits the ticket, and places the order when the page asks first: the last trade was
    104.00 and the book has no bids, so 95 or 96 is more than 5 % from the market."""
    page.click("[data-ticket-submit]")
    page.locator("[data-far-dialog]").get_by_role("button", name="Place it anyway").click()


def test_place_an_order_from_the_ticket_see_it_and_cancel_it(browser, stack, trader):
    status, _ = stack.api(trader, "POST", "orders/cancel-all", {"symbol": "ACME"})
    assert status == 202
    deadline = time.monotonic() + TIMEOUT / 1000
    while stack.api(trader, "GET", "instruments/ACME/book/")[1]["bids"]:  # the engine cancels
        assert time.monotonic() < deadline, "the trader's bids were not cancelled"
        time.sleep(0.1)
    page = login(browser, stack, "demo", viewport={"width": 1400, "height": 1000})
    page.goto("/trade/?symbol=ACME")
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=TIMEOUT
    )

    # The API's validation message, shown at the field.
    page.fill("#ticket-price", "95.001")
    page.fill("#ticket-quantity", "5")
    submit_far_from_the_market(page)
    expect(page.locator('[data-error-for="price"]')).to_contain_text("tick", timeout=TIMEOUT)
    expect(page.locator("[data-ticket-error]")).to_be_visible()

    page.fill("#ticket-price", "95.50")
    submit_far_from_the_market(page)
    expect(page.locator("[data-ticket-error]")).to_be_hidden()
    # Prices to the tick: "95.50", not "95.5".
    expect(page.locator("[data-ticket-result]")).to_contain_text("95.50", timeout=TIMEOUT)
    row = page.locator("[data-orders] tr", has_text="95.50")
    expect(row).to_have_count(1, timeout=TIMEOUT)
    expect(row).to_contain_text("new", timeout=TIMEOUT)

    # A fill: the trader sells into a second order; fills, position and equity update.
    page.fill("#ticket-price", "96.00")
    page.fill("#ticket-quantity", "4")
    submit_far_from_the_market(page)
    expect(page.locator("[data-orders] tr", has_text="96")).to_have_count(1, timeout=TIMEOUT)
    stack.place(trader, "sell", "96.00", "4", stp="none")
    expect(page.locator("[data-fills] tr").first).to_contain_text("96", timeout=TIMEOUT)
    expect(page.locator("[data-positions] tr").first).to_contain_text("ACME", timeout=TIMEOUT)
    # Prices and money to the tick and the cent (the average price, the mark, the P&L).
    expect(page.locator("[data-positions] tr").first).to_contain_text(
        re.compile(r"\d\.\d\d(?!\d)"), timeout=TIMEOUT
    )
    expect(page.locator("[data-orders] tr", has_text="96")).to_have_count(0, timeout=TIMEOUT)
    expect(page.locator('[data-account="equity"]')).not_to_have_text("—")
    # The demo's maker rebate (1 bp of 384.00), once the recorder has charged it.
    expect(page.locator("[data-fills] tr").first).to_contain_text("-0.04", timeout=TIMEOUT)
    expect(page.locator('[data-account="fees_paid"]')).not_to_have_text("—")
    page.wait_for_timeout(1500)  # the recorder's numbers for the picture
    page.screenshot(path=str(SCREENSHOTS / "trade.png"), full_page=True)

    row.get_by_role("button", name="Cancel").click()
    expect(page.locator("[data-orders] tr", has_text="95.5")).to_have_count(0, timeout=TIMEOUT)
    expect(page.locator("[data-orders-empty]")).to_be_visible()
    page.context.close()


def test_non_staff_sees_no_controls(browser, stack):
    page = login(browser, stack, "demo")
    expect(page.locator(".dash")).to_be_visible()
    assert page.locator("[data-controls]").count() == 0
    assert page.locator("text=Simulation controls").count() == 0
    page.context.close()


def test_staff_pauses_and_resumes_the_simulation(browser, stack):
    page = login(browser, stack, "admin")
    controls = page.locator("[data-controls]")
    expect(controls).to_be_visible()
    sim = page.request.get("/api/v1/sim/")
    if sim.status == 404:
        pytest.skip("the agents app provides no /api/v1/sim/ endpoints yet")
    badge = page.locator("[data-sim-state]")
    expect(badge).to_have_text(re.compile("Running|Paused"), timeout=TIMEOUT)

    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    pause = controls.get_by_role("button", name="Pause")
    resume = controls.get_by_role("button", name="Resume")
    expect(resume).to_be_disabled()  # only what changes something is offered
    pause.click()
    expect(badge).to_have_text("Paused", timeout=TIMEOUT)
    expect(page.locator("[data-control-result]")).to_contain_text("paused")
    expect(pause).to_be_disabled()
    # Nothing trades while the books are halted: said at once, not faded over 10 seconds.
    expect(page.locator('[data-stat="trades_per_s"]')).to_have_text("0 · paused", timeout=TIMEOUT)
    resume.click()
    expect(badge).to_have_text("Running", timeout=TIMEOUT)
    expect(resume).to_be_disabled()
    assert len(dialogs) == 2 and "Pause" in dialogs[0]  # each asked for confirmation
    # The pause and the resume are marked on the candles.
    expect(page.locator("[data-price-chart]")).to_have_attribute("data-markers", "2")
    expect(page.locator("[data-price-chart]")).to_have_attribute(
        "aria-label", re.compile("Paused, Resumed")
    )
    page.context.close()
