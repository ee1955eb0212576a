"""The dashboard at ``/``, driven in headless Chromium against a real ``serve``.

One browser and one server for the module; each test opens a fresh page (and
context, so sessionStorage starts empty) and fails on any console error.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    WebSocketRoute,
    expect,
    sync_playwright,
)

from order_engine.cli.serving import dashboard_line
from tests.e2e.browser import CHROMIUM_ARGS, ServeProcess, require_chromium

pytestmark = pytest.mark.slow
WAIT_MS = 15_000
# Set to a path (e.g. docs/img/dashboard.png) to keep the screenshot for the README.
SCREENSHOT = os.environ.get("DASHBOARD_SCREENSHOT")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    # A little simulated latency, so that rows visibly move through their statuses.
    process = ServeProcess(tmp_path_factory.mktemp("dashboard"), SIM_TIME_SCALE="0.1")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_chromium()
    with sync_playwright() as playwright:
        # launch() gives Chromium a fresh temporary user-data-dir of its own (and
        # refuses --user-data-dir): no state from any earlier run.
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, server: ServeProcess, console: Console) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("console", console)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    try:
        yield page
    finally:
        context.close()


def row(page: Page, order_id: str) -> Locator:
    return page.locator(f'tr[data-order-id="{order_id}"]')


def test_serve_ends_start_up_with_one_line_naming_the_dashboard_url(
    server: ServeProcess,
) -> None:
    lines = server.log().splitlines()
    running = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
    assert lines[running + 1] == dashboard_line("127.0.0.1", server.port)
    assert f"Dashboard {server.url}/ " in lines[running + 1]


def test_the_page_is_served_with_a_self_only_policy_and_a_missing_file_is_a_404_problem(
    server: ServeProcess,
) -> None:
    with urllib.request.urlopen(server.url + "/", timeout=10) as response:  # noqa: S310
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert b'src="/dashboard/js/app.js"' in response.read()
    with urllib.request.urlopen(server.url + "/dashboard/vendor/uplot/uPlot.esm.js") as response:  # noqa: S310
        assert b"uPlot" in response.read(2000)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(server.url + "/dashboard/js/nope.js", timeout=10)  # noqa: S310
    assert missing.value.code == 404
    assert missing.value.headers["content-type"] == "application/problem+json"


def test_the_page_loads_with_charts_and_labelled_fields_and_no_console_errors(
    page: Page, server: ServeProcess, console: Console
) -> None:
    for label in ("Type", "Sell", "Buy", "Amount", "Slippage (bps)"):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    expect(page.locator("#quote")).to_contain_text("Expected")
    expect(page.locator("#chart-rate canvas")).to_have_count(1)
    expect(page.locator("#chart-price canvas")).to_have_count(1)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"the page is {overflow} px wide in a {width} px viewport"
    assert console.errors == []


def test_an_order_submitted_through_the_form_appears_and_reaches_confirmed(
    page: Page, console: Console
) -> None:
    page.get_by_label("Amount", exact=True).fill("3")
    expect(page.locator("#quote")).to_contain_text("Expected")
    # Keyboard only: Enter in a field submits the form.
    page.get_by_label("Amount", exact=True).press("Enter")
    result = page.locator("#submit-result")
    expect(result).to_contain_text("accepted")
    short = re.search(r"Order ([0-9a-f]{8})", result.inner_text())
    assert short is not None
    submitted = page.locator(f'tr[data-order-id^="{short.group(1)}"]')
    expect(submitted).to_have_attribute("data-status", "confirmed")
    expect(submitted).to_contain_text("SOL → USDC")
    expect(submitted).to_contain_text("market")
    assert console.errors == []


def test_an_order_submitted_through_the_api_appears_without_a_reload(
    page: Page, server: ServeProcess, console: Console
) -> None:
    order_id = server.post_order("4")
    expect(row(page, order_id)).to_have_attribute("data-status", "confirmed")
    view = server.get(f"/api/orders/{order_id}")
    expect(row(page, order_id)).to_contain_text(view["fill"]["amountOut"])
    assert console.errors == []


def test_the_detail_view_shows_every_seq_with_quotes_min_out_and_the_slot(
    page: Page, server: ServeProcess, console: Console
) -> None:
    order_id = server.post_order("250")  # large enough to compare both venues closely
    expect(row(page, order_id)).to_have_attribute("data-status", "confirmed")
    row(page, order_id).get_by_role("button").focus()
    page.keyboard.press("Enter")
    events = server.get(f"/api/orders/{order_id}/events")["events"]
    timeline = page.locator("#timeline > li")
    expect(timeline).to_have_count(len(events))
    assert [int(s) for s in timeline.evaluate_all("els => els.map(e => e.dataset.seq)")] == [
        e["seq"] for e in events
    ]
    routing = page.locator('#timeline > li[data-status="routing"]').first
    for quote in next(e for e in events if e["status"] == "routing")["quotes"]:
        expect(routing).to_contain_text(f"{quote['venue']}/{quote['poolKind']}")
    expect(routing).to_contain_text("reason")
    confirmed = next(e for e in events if e["status"] == "confirmed")
    building = next(e for e in events if e["status"] == "building")
    expect(page.locator("#timeline")).to_contain_text(building["minAmountOut"])
    last = page.locator('#timeline > li[data-status="confirmed"]')
    expect(last).to_contain_text(confirmed["txHash"])
    expect(last.locator("dt", has_text=re.compile("^slot$"))).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    assert console.errors == []


def test_the_page_survives_a_server_restart_and_catches_up(
    page: Page, server: ServeProcess, console: Console
) -> None:
    # Hold the page's reconnects until the engine has moved on without it, so the
    # page can only learn of the new order by resuming from its cursor.
    held = True
    opened: list[str] = []

    def gate(socket: WebSocketRoute) -> None:
        opened.append(socket.url)
        if held:
            socket.close(code=1013, reason="held by the test")
        else:
            socket.connect_to_server()

    page.route_web_socket(re.compile(r"/api/orders/stream"), gate)
    before = server.post_order("1")
    expect(row(page, before)).to_have_attribute("data-status", "confirmed")
    assert server.stop() == 0
    expect(page.locator("#connection")).to_contain_text("reconnecting")
    server.start()
    missed = server.post_order("5")
    deadline = time.monotonic() + WAIT_MS / 1000
    while server.get(f"/api/orders/{missed}")["status"] != "confirmed":
        assert time.monotonic() < deadline, "the order did not confirm"
        time.sleep(0.05)
    expect(row(page, missed)).to_have_count(0)
    held = False
    expect(page.locator("#connection")).to_have_text("live")
    expect(row(page, missed)).to_have_attribute("data-status", "confirmed")
    expect(row(page, before)).to_have_count(1)
    assert any("after=" in url for url in opened), opened
    live = server.post_order("6")
    expect(row(page, live)).to_have_attribute("data-status", "confirmed")
    # While the server was down, reconnect attempts fail in the console; nothing else may.
    refused = re.compile(r"ERR_CONNECTION_REFUSED|WebSocket connection to .* failed")
    assert [e for e in console.errors if not refused.search(e)] == []


def test_the_page_renders_whole_at_desktop_and_phone_widths(
    page: Page, server: ServeProcess, console: Console, tmp_path: Path
) -> None:
    """The README's screenshot comes from here (DASHBOARD_SCREENSHOT=docs/img/dashboard.png)."""
    ids = [server.post_order(amount) for amount in ("120", "0.5", "40", "8")]
    for order_id in ids:
        expect(row(page, order_id)).to_have_attribute("data-status", re.compile("confirmed|failed"))
    row(page, ids[0]).get_by_role("button").click()
    last = page.locator("#timeline > li").last
    expect(last).to_have_attribute("data-status", re.compile("confirmed|failed"))
    page.wait_for_timeout(2200)  # the charts redraw every 2 s
    for width, name in ((1280, "dashboard.png"), (390, "dashboard-390.png")):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)
        shot = page.screenshot(path=str(tmp_path / name), full_page=True)
        assert shot[:8] == b"\x89PNG\r\n\x1a\n"
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    if SCREENSHOT:
        shutil.copy(tmp_path / "dashboard.png", SCREENSHOT)
    assert console.errors == []


def test_a_limit_order_placed_in_the_form_waits_open_and_its_cancel_button_cancels_it(
    page: Page, console: Console
) -> None:
    page.get_by_label("Type", exact=True).select_option("limit")
    page.get_by_label("Amount", exact=True).fill("1")
    page.get_by_label("Limit price (buy token per sell token)").fill("1000000")
    page.get_by_label("Expires in (seconds, optional)").fill("600")
    page.locator("#submit-order").click()
    result = page.locator("#submit-result")
    expect(result).to_contain_text("accepted")
    short = re.search(r"Order ([0-9a-f]{8})", result.inner_text())
    assert short is not None
    placed = page.locator(f'tr[data-order-id^="{short.group(1)}"]')
    expect(placed).to_have_attribute("data-status", "open")
    expect(placed).to_contain_text("limit")
    placed.get_by_role("button").click()
    expect(page.locator("#detail-summary")).to_contain_text("1000000 USDC per SOL")
    page.locator("#cancel-order").click()
    expect(placed).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#detail-summary")).to_contain_text("cancelled")
    expect(page.locator("#cancel-order")).to_have_count(0)
    assert console.errors == []


def test_with_keys_on_the_page_asks_for_one_and_puts_only_single_use_tickets_in_urls(
    browser: Browser, server: ServeProcess, console: Console
) -> None:
    key = server.cli("keys", "create", "--name", "dashboard").strip().split()[-1]
    assert key.startswith("oek_")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("console", console)
        page.set_default_timeout(WAIT_MS)
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))
        page.on("websocket", lambda socket: urls.append(socket.url))
        page.goto(server.url + "/")
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        page.get_by_label("Key", exact=True).fill(key)
        page.get_by_label("Key", exact=True).press("Enter")
        expect(page.locator("#connection")).to_have_text("live")
        order_id = server.post_order("2", key=key)
        expect(row(page, order_id)).to_have_attribute("data-status", "confirmed")
        assert page.evaluate("sessionStorage.getItem('order-engine.apiKey')") == key
        assert not [u for u in urls if key in u]
        sockets = [u for u in urls if u.startswith("ws")]
        # Before the key was entered, none; once it was, a single-use ticket per socket.
        assert "ticket=oet_" in sockets[-1], sockets
        assert not [u for u in sockets if "apiKey" in u], sockets
    finally:
        context.close()
    # Before the key was entered the page was refused (401s), as it should be.
    assert [e for e in console.errors if "401" not in e] == []
