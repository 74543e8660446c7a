"""The pages in a real browser (the system's Chromium) against a real stack: uvicorn, the engine
worker, the recorder, the bridge and Redis. Orders the test submits through the REST API move
the market the browser shows."""

import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import SCREENSHOTS, login

pytestmark = pytest.mark.slow
TIMEOUT = 20_000  # ms: generous, the machine is shared


@pytest.fixture(scope="module")
def trader(stack):
    """Another participant's token: it makes the market the browser watches."""
    return stack.token("market-maker")


def place(stack, token, side, price, quantity, symbol="ACME", **extra):
    status, body = stack.api(
        token,
        "POST",
        "orders/",
        {"symbol": symbol, "side": side, "price": price, "quantity": quantity, **extra},
    )
    assert status in (200, 201), body
    return body


def test_dashboard_shows_a_live_book_trades_and_a_moving_price(browser, stack, trader):
    page = login(browser, stack, "demo", viewport={"width": 1400, "height": 1000})
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=TIMEOUT
    )
    expect(page.locator("[data-ladder-empty]")).to_be_visible()

    for level in range(5):
        place(stack, trader, "sell", f"{101 + level}.00", str(10 + level))
        place(stack, trader, "buy", f"{99 - level}.00", str(10 + level))
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
        place(stack, trader, "buy", price, str(10 + step), stp="none")
        prices.append(price)  # shown to the tick, as placed: "101.00"
        expect(page.locator('[data-bbo="last"]')).to_have_text(prices[-1], timeout=TIMEOUT)
    expect(page.locator("[data-tape] tr")).to_have_count(4, timeout=TIMEOUT)
    expect(page.locator("[data-tape] tr").first).to_contain_text("104")
    expect(page.locator("[data-price-empty]")).to_be_hidden()
    expect(page.locator("[data-price-chart] canvas").first).to_be_visible()
    expect(page.locator("[data-depth-chart] canvas").first).to_be_visible()
    expect(page.locator('[data-stat="volume"]')).not_to_have_text("—", timeout=TIMEOUT)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1200)  # let a stats frame arrive for the picture
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    page.context.close()


def test_the_dashboard_shows_a_volatility_pause(browser, stack, trader):
    # GLOBEX, which no other test trades: the demo's guard pauses it after a 5 % move.
    page = login(browser, stack, "demo", viewport={"width": 1400, "height": 1000})
    page.goto(f"{stack.url}/?symbol=GLOBEX")
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=TIMEOUT
    )
    badge = page.locator("[data-paused]")
    expect(badge).to_be_hidden()
    place(stack, trader, "sell", "42.50", "10", symbol="GLOBEX")
    place(stack, trader, "buy", "42.50", "10", symbol="GLOBEX", stp="none")
    place(stack, trader, "sell", "45.00", "10", symbol="GLOBEX")
    place(stack, trader, "buy", "45.00", "10", symbol="GLOBEX", stp="none")  # +5.9 %
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
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
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
    place(stack, trader, "sell", "96.00", "4", stp="none")
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
    controls.get_by_role("button", name="Pause").click()
    expect(badge).to_have_text("Paused", timeout=TIMEOUT)
    expect(page.locator("[data-control-result]")).to_contain_text("paused")
    controls.get_by_role("button", name="Resume").click()
    expect(badge).to_have_text("Running", timeout=TIMEOUT)
    assert len(dialogs) == 2 and "Pause" in dialogs[0]  # each asked for confirmation
    page.context.close()
