"""The trading page, the account's history and its API tokens in a real browser (the system's
Chromium) against a real stack: the book beside the ticket fills it, the ticket previews what an
order is worth, costs and reserves, asks before a price far from the market, says why the engine
rejected an order in plain words and follows the order afterwards; an unknown symbol says so; a
token created on the page works until it is revoked there; the history shows a fill and its P&L
curve; on a phone the open orders' buttons are in view.

Prices stay within 2 % of 100.00 (ACME's reference) so that no trade sets off the volatility
guard (5 %), and every test starts from the same book: the market maker's four levels."""

import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = pytest.mark.slow
TIMEOUT = 20_000  # ms: generous, the machine is shared
UTC_TITLE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
BASE_BOOK = [
    ("sell", "101.00", "10"),
    ("sell", "102.00", "10"),
    ("buy", "99.00", "10"),
    ("buy", "98.00", "10"),
]


@pytest.fixture(scope="module")
def demo_token(stack):
    """A token of the browser's own user (demo), for what the test does behind the page's back."""
    return stack.token("demo")


def until(check, what, timeout=TIMEOUT / 1000):
    """Polls a condition of the stack (not the page: that is `expect`'s) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def book(stack, trader, demo_token):
    """Nobody's orders but the market maker's four levels: asks 101.00 and 102.00, bids 99.00 and
    98.00, 10 each (mid 100.00)."""
    for token in (trader, demo_token):
        status, _ = stack.api(token, "POST", "orders/cancel-all", {"symbol": "ACME"})
        assert status == 202

    def empty():
        body = stack.api(trader, "GET", "instruments/ACME/book/")[1]
        return not body["bids"] and not body["asks"]

    until(empty, "the book was not emptied")
    for side, price, quantity in BASE_BOOK:
        stack.place(trader, side, price, quantity)
    asks = lambda: stack.api(trader, "GET", "instruments/ACME/book/")[1]["asks"]  # noqa: E731
    until(lambda: len(asks()) == 2, "the book was not made")


def trade_page(browser, stack, **context_options):
    options = {"viewport": {"width": 1400, "height": 1000}, **context_options}
    page = login(browser, stack, "demo", **options)
    page.goto("/trade/?symbol=ACME")
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=TIMEOUT
    )
    return page


def test_book_prices_fill_the_ticket_and_the_preview_adds_up(browser, stack, book):
    page = trade_page(browser, stack)
    asks = page.locator("[data-book-asks] button.book-price")
    bids = page.locator("[data-book-bids] button.book-price")
    expect(asks).to_have_text(["102.00", "101.00"], timeout=TIMEOUT)  # the best ask by the spread
    expect(bids).to_have_text(["99.00", "98.00"])
    expect(page.locator("[data-book-spread]")).to_have_text("Spread 2.00")

    # An ask fills a buy at its price; the order would take it: ACME's taker fee, 3 bp.
    asks.filter(has_text="101.00").click()
    expect(page.locator("#ticket-price")).to_have_value("101.00")
    expect(page.locator('input[name="side"][value="buy"]')).to_be_checked()
    expect(page.locator("#ticket-quantity")).to_be_focused()
    page.locator("#ticket-quantity").fill("10")
    expect(page.locator('[data-preview="notional"]')).to_have_text("1,010.00")
    expect(page.locator('[data-preview="fee"]')).to_have_text("0.30")  # 1,010.00 x 3 bp
    expect(page.locator('[data-preview="fee-role"]')).to_have_text("taker, 3 bp")
    expect(page.locator('[data-preview="reserve"]')).to_have_text("1,010.30")

    # A bid fills a sell; a sell reserves its quantity.
    bids.filter(has_text="98.00").click()
    expect(page.locator("#ticket-price")).to_have_value("98.00")
    expect(page.locator('input[name="side"][value="sell"]')).to_be_checked()
    expect(page.locator('[data-preview="notional"]')).to_have_text("980.00")
    expect(page.locator('[data-preview="reserve"]')).to_have_text("10 ACME")

    # Typed: a sell that rests on the book earns the maker rebate (-1 bp), updated per key.
    page.locator("#ticket-price").fill("100.50")
    page.locator("#ticket-quantity").fill("20")
    expect(page.locator('[data-preview="notional"]')).to_have_text("2,010.00")
    expect(page.locator('[data-preview="fee"]')).to_have_text("-0.20")
    expect(page.locator('[data-preview="fee-role"]')).to_have_text("maker, -1 bp rebate")
    page.context.close()


def test_a_fill_on_arrival_shows_its_average_price(browser, stack, book, trader):
    stack.place(trader, "sell", "101.50", "3")  # asks 101.00 x10, 101.50 x3, 102.00 x10
    page = trade_page(browser, stack)
    expect(page.locator("[data-book-asks] button.book-price")).to_have_count(3, timeout=TIMEOUT)
    page.fill("#ticket-price", "101.50")
    page.fill("#ticket-quantity", "12")
    page.click("[data-ticket-submit]")
    # 10 at 101.00 and 2 at 101.50: 101.0833… a share, to the tick and one more decimal.
    result = page.locator("[data-ticket-result]")
    expect(result).to_contain_text("— filled at 101.08", timeout=TIMEOUT)
    expect(result).to_contain_text("average")
    page.context.close()


def test_a_price_far_from_the_market_asks_first(browser, stack, book):
    page = trade_page(browser, stack)
    expect(page.locator("[data-book-bids] button.book-price")).to_have_count(2, timeout=TIMEOUT)
    dialog = page.locator("[data-far-dialog]")
    page.fill("#ticket-price", "93.00")  # 7 % below the mid, 100.00
    page.fill("#ticket-quantity", "1")
    page.click("[data-ticket-submit]")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("7.0 % below the mid (100.00)")

    # Back to the ticket: nothing is placed.
    dialog.get_by_role("button", name="Back to the ticket").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-ticket-result]")).to_have_text("")
    expect(page.locator("[data-orders] tr")).to_have_count(0)

    # Asked again and accepted: placed.
    page.click("[data-ticket-submit]")
    dialog.get_by_role("button", name="Place it anyway").click()
    expect(page.locator("[data-ticket-result]")).to_contain_text("at 93.00 — new", timeout=TIMEOUT)
    expect(page.locator("[data-orders] tr", has_text="93.00")).to_have_count(1, timeout=TIMEOUT)

    # A price near the market asks nothing.
    page.fill("#ticket-price", "99.50")
    page.click("[data-ticket-submit]")
    expect(page.locator("[data-ticket-result]")).to_contain_text("at 99.50 — new", timeout=TIMEOUT)
    expect(dialog).to_be_hidden()
    page.context.close()


def test_a_rejected_order_says_why_in_plain_words(browser, stack, book):
    page = trade_page(browser, stack)
    expect(page.locator("[data-book-asks] button.book-price")).to_have_count(2, timeout=TIMEOUT)
    page.fill("#ticket-price", "101.00")  # the best ask: a post-only buy there would take it
    page.fill("#ticket-quantity", "1")
    page.check('input[name="post_only"]')
    expect(page.locator("[data-preview-note]")).to_contain_text("would be rejected")
    page.click("[data-ticket-submit]")
    result = page.locator("[data-ticket-result]")
    expect(result).to_contain_text(
        "rejected: A post-only order would have traded on arrival.", timeout=TIMEOUT
    )
    expect(result).not_to_contain_text("POST_ONLY")
    page.context.close()


def test_the_result_line_follows_the_order(browser, stack, book, trader, demo_token):
    page = trade_page(browser, stack)
    result = page.locator("[data-ticket-result]")

    # Cancelled elsewhere (a program with the user's token): the line follows the executions.
    page.fill("#ticket-price", "99.50")
    page.fill("#ticket-quantity", "2")
    page.click("[data-ticket-submit]")
    expect(result).to_contain_text("at 99.50 — new", timeout=TIMEOUT)
    order_id = int(result.inner_text().split(":")[0].split()[-1])
    status, body = stack.api(demo_token, "POST", f"orders/{order_id}/cancel")
    assert status == 200, body
    expect(result).to_contain_text("at 99.50 — cancelled", timeout=TIMEOUT)
    expect(result).not_to_contain_text("new")

    # Cancelled on the page.
    page.fill("#ticket-price", "99.60")
    page.click("[data-ticket-submit]")
    expect(result).to_contain_text("at 99.60 — new", timeout=TIMEOUT)
    row = page.locator("[data-orders] tr", has_text="99.60")
    row.get_by_role("button", name="Cancel").click()
    expect(result).to_contain_text("at 99.60 — cancelled", timeout=TIMEOUT)
    expect(row).to_have_count(0, timeout=TIMEOUT)

    # Filled later, by someone else's sell: filled, at its average price.
    page.fill("#ticket-price", "100.50")
    page.fill("#ticket-quantity", "4")
    page.click("[data-ticket-submit]")
    expect(result).to_contain_text("at 100.50 — new", timeout=TIMEOUT)
    order_id = int(result.inner_text().split(":")[0].split()[-1])
    stack.place(trader, "sell", "100.50", "4")
    expect(result).to_contain_text("at 100.50 — filled at 100.50 average", timeout=TIMEOUT)
    # Once recorded, the page's reading of the row agrees.
    until(
        lambda: stack.api(demo_token, "GET", f"orders/{order_id}/")[1]["status"] == "FILLED",
        "the fill was not recorded",
    )
    expect(result).to_contain_text("— filled at 100.50 average")
    page.context.close()


@pytest.mark.parametrize("path", ["/trade/", "/"])
def test_an_unknown_symbol_says_so(browser, stack, path):
    page = login(browser, stack, "demo")
    response = page.goto(f"{path}?symbol=NOPE")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Unknown instrument “NOPE”")
    expect(page.get_by_role("alert")).to_contain_text("no instrument NOPE")
    assert page.locator("[data-ticket], .dash").count() == 0  # not ACME's page in its place
    page.get_by_role("link", name="ACME · Acme Corporation").click()
    expect(page.locator('[data-symbol-select] option[value="ACME"]')).to_have_attribute(
        "selected", ""
    )
    page.context.close()


def test_a_token_from_the_tokens_page_works_until_revoked(browser, stack):
    page = login(browser, stack, "demo")
    page.get_by_role("link", name="Tokens").click()
    expect(page).to_have_url(f"{stack.url}/tokens/")
    page.fill("#id_name", "browser-bot")
    page.get_by_role("button", name="Create token").click()
    secret_box = page.locator("[data-secret]")
    expect(secret_box).to_be_visible()
    expect(page.locator("[data-token-secret]")).to_contain_text("shown this once")
    secret = secret_box.input_value()
    assert secret.startswith("fb_")

    status, body = stack.api(secret, "GET", "account/")
    assert status == 200 and body["name"] == "demo", body

    # Listed, never shown again; last used is known after the call.
    page.goto("/tokens/")
    row = page.locator("[data-token-id]", has_text="browser-bot")
    expect(row).to_have_count(1)
    assert secret not in page.content()
    expect(row).not_to_contain_text("never")

    # Revoked behind the page's own dialog; the token stops working.
    row.get_by_role("button", name="Revoke").click()
    dialog = page.locator("[data-revoke-dialog]")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("Token revoked")
    expect(page.locator("[data-token-id]", has_text="browser-bot")).to_have_count(0)
    until(lambda: stack.api(secret, "GET", "account/")[0] == 401, "the revoked token still works")

    page.get_by_role("link", name="API docs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The Flashbook API for programs")
    page.context.close()


def test_the_history_shows_a_fill_and_the_pnl_curve(browser, stack, book, trader, demo_token):
    stack.place(trader, "sell", "101.00", "2")
    filled = stack.place(demo_token, "buy", "101.00", "2")
    assert filled["status"] == "FILLED", filled

    def recorded():
        fills = stack.api(demo_token, "GET", "account/fills/?limit=50")[1]["results"]
        return any(f["order_id"] == filled["id"] for f in fills)

    until(recorded, "the fill was not recorded")
    page = login(browser, stack, "demo", viewport={"width": 1280, "height": 1000})
    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Account history")
    fill_row = page.locator("[data-history-fills] tbody tr").first
    expect(fill_row).to_contain_text("ACME")
    expect(fill_row).to_contain_text("101.00")
    # In the viewer's zone, UTC on hover.
    expect(fill_row.locator("time")).to_have_attribute("title", UTC_TITLE)
    orders = page.locator("[data-history-orders] tbody tr")
    # The Id cell exactly: the id's digits may also appear in another row's time or price.
    id_cell = orders.locator('td[data-label="Id"]').get_by_text(str(filled["id"]), exact=True)
    expect(id_cell).to_have_count(1)
    expect(page.locator("[data-pnl-chart] canvas").first).to_be_visible()
    expect(page.locator('[data-pnl="total"]')).not_to_have_text("—")
    page.context.close()


def test_open_orders_can_be_cancelled_on_a_phone(browser, stack, book, demo_token):
    order = stack.place(demo_token, "buy", "97.50", "3")
    page = trade_page(browser, stack, viewport={"width": 390, "height": 844}, is_mobile=True)
    row = page.locator(f'[data-orders] tr[data-order-id="{order["id"]}"]')
    expect(row).to_have_count(1, timeout=TIMEOUT)
    cancel = row.get_by_role("button", name="Cancel")
    cancel.scroll_into_view_if_needed()
    expect(cancel).to_be_in_viewport()
    box = cancel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    replace = row.get_by_role("button", name="Replace")
    box = replace.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    for number in ("97.50", "3"):  # the price and the quantity, beside them
        expect(row).to_contain_text(number)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the trading page is {overflow}px wider than the phone"
    cancel.click()
    expect(row).to_have_count(0, timeout=TIMEOUT)
    page.context.close()


def test_an_open_order_shows_its_place_in_the_queue(browser, stack, book, trader, demo_token):
    """Behind the market maker's 10 at 99.00 and another 4 there, the demo's order is third in
    line with 14 ahead; when the orders ahead go, it is first — though nothing happened to it."""
    second = stack.place(trader, "buy", "99.00", "4")
    mine = stack.place(demo_token, "buy", "99.00", "2")
    page = trade_page(browser, stack)
    queue = page.locator(f'[data-orders] tr[data-order-id="{mine["id"]}"] td.queue')
    expect(queue).to_have_text("3rd · 14 ahead", timeout=TIMEOUT)
    expect(queue).to_have_attribute("title", "3 orders for 16 at this price")
    status, _ = stack.api(trader, "POST", f"orders/{second['id']}/cancel", {})
    assert status in (200, 202)
    expect(queue).to_have_text("2nd · 10 ahead", timeout=TIMEOUT)
    status, _ = stack.api(trader, "POST", "orders/cancel-all", {"symbol": "ACME"})
    assert status == 202
    expect(queue).to_have_text("1st in line", timeout=TIMEOUT)
    page.context.close()
