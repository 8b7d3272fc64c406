"""The seat-map page (/app) in a real browser: headless Chromium driven by Playwright, against the
app served by a real HTTP server in a thread, on the real PostgreSQL, Redis and moto.

Every page a test opens is watched (tests/support/browser.py): a request to any other origin, a
console error (a Content-Security-Policy or Trusted Types violation is one) or an uncaught
exception fails the test. Waits are Playwright's auto-waiting `expect`; the only fixed timeout
that is a promise rather than slack is LIVE_MS, the contract's "another buyer's change shows
within 2 s". Screenshots of the map land in test-artifacts/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.settings import get_settings
from tests.integration.test_events import event_runner  # noqa: F401  (the fixture, for stats)
from tests.support.browser import ARTIFACTS, PageWatch, skip_without_browser
from tests.support.live_server import serve_in_thread

pytestmark = skip_without_browser

LIVE_MS = 2_000  # contract v1.1: another buyer's hold, sale or lapsed hold shows within 2 s
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "password123"  # what the make_user fixture gives every user


@pytest.fixture(scope="module")
def live_url(app_module) -> Iterator[str]:
    with serve_in_thread(app_module.app) as url:
        yield url


@pytest.fixture
def open_page(browser, live_url) -> Iterator[Callable[..., Any]]:
    """open_page(path, viewport=..., **context options): a page in a browser context of its own
    (its own sessionStorage: another person), watched until the test ends."""
    opened: list[tuple[Any, PageWatch]] = []

    def open_(path: str | None = "/app", *, viewport=DESKTOP, clock: bool = False, **options):
        context = browser.new_context(viewport=viewport, **options)
        watch = PageWatch(live_url)
        page = watch.attach(context.new_page())
        page.set_default_timeout(10_000)
        if clock:
            page.clock.install()
        opened.append((context, watch))
        if path is not None:
            page.goto(f"{live_url}{path}")
        return page

    yield open_
    for context, _ in opened:
        context.close()
    for _, watch in opened:
        watch.assert_clean()


def expect(*args: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args)


def seat(page, label: str):
    return page.locator(f'[data-seat="{label}"]')


def log_in(page, email: str, password: str = PASSWORD) -> None:
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', password)
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    expect(page.locator("#whoami")).to_be_visible()


def pick(page, *labels: str) -> None:
    for label in labels:
        seat(page, label).click()
        expect(seat(page, label)).to_have_attribute("data-selected", "true")


def hold_picked(page) -> None:
    page.locator('[data-action="hold"]').click()
    expect(page.locator("[data-hold-countdown]")).to_be_visible()


def session_url(session: dict[str, Any]) -> str:
    return f"/app?session={session['id']}"


def hold_by_api(client, customer, session_id: str, seats: list[str]) -> dict[str, Any]:
    answer = client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=customer["token"]
    )
    assert answer.status == 201, answer.body
    return answer.body


def pause_clock(page) -> None:
    """Stop the page's timers (its polling, its countdown) where they are; fetch still works."""
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.05)  # in seconds


def alert(page):
    return page.get_by_role("alert")


# --- the page and its files --------------------------------------------------------------------


def test_the_page_lists_upcoming_sessions_and_opens_one(open_page, make_session):
    first = make_session(movie="Casablanca", rows=3, seats_per_row=10)
    make_session(movie="Metropolis")
    page = open_page("/app")
    expect(page.get_by_role("link", name="Casablanca")).to_be_visible()
    expect(page.get_by_role("link", name="Metropolis")).to_be_visible()
    expect(page.locator(".session-card", has_text="Casablanca")).to_contain_text(
        "30 of 30 seats free"
    )
    page.get_by_role("link", name="Casablanca").click()
    expect(page).to_have_url(re.compile(rf"/app\?session={first['id']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Casablanca")
    expect(page.locator("[data-seat]")).to_have_count(30)
    expect(seat(page, "C10")).to_have_attribute("data-status", "AVAILABLE")
    expect(page.get_by_role("button", name="C10, available", exact=True)).to_be_visible()


def test_every_request_stays_on_the_origin_and_polls_revalidate(open_page, make_session, live_url):
    session = make_session()
    page = open_page(None)
    seat_answers: list[tuple[int, str | None, str | None]] = []
    page.on(
        "response",
        lambda r: (
            seat_answers.append(
                (r.status, r.request.headers.get("if-none-match"), r.headers.get("etag"))
            )
            if r.url.endswith("/seats")
            else None
        ),
    )
    page.goto(f"{live_url}{session_url(session)}")
    expect(seat(page, "A1")).to_have_attribute("data-status", "AVAILABLE")
    with page.expect_response(lambda r: r.url.endswith("/seats") and r.status == 304) as got:
        pass
    not_modified = got.value
    assert not_modified.request.headers["if-none-match"] == not_modified.headers["etag"]
    assert seat_answers[0][0] == 200 and seat_answers[0][1] is None
    etag = seat_answers[0][2]
    assert all(sent == etag for status, sent, _ in seat_answers[1:])
    assert all(status == 304 for status, _, _ in seat_answers[1:])
    # What the page loaded: its own files, its own API, nothing else (the watch checks the origin).
    watch_urls = [url for url in page.evaluate("performance.getEntries().map(e => e.name)")]
    assert any("/app/app.js?v=" in url for url in watch_urls)
    assert any("/app/app.css?v=" in url for url in watch_urls)


# --- live: another buyer ----------------------------------------------------------------------


def test_a_hold_and_a_sale_in_one_browser_show_live_in_another(open_page, make_user, make_session):
    session = make_session()
    buyer = make_user()
    buying = open_page(session_url(session))
    watching = open_page(session_url(session))
    expect(seat(watching, "B3")).to_have_attribute("data-status", "AVAILABLE")

    log_in(buying, buyer["email"])
    pick(buying, "B3")
    hold_picked(buying)
    expect(seat(buying, "B3")).to_have_attribute("aria-label", "B3, reserved, held for you")
    expect(seat(watching, "B3")).to_have_attribute("data-status", "RESERVED", timeout=LIVE_MS)
    expect(seat(watching, "B3")).to_have_attribute("aria-label", "B3, reserved")

    buying.locator('[data-action="pay"]').click()
    expect(buying.locator("[data-hold-countdown]")).to_have_count(0)
    expect(seat(watching, "B3")).to_have_attribute("data-status", "SOLD", timeout=LIVE_MS)
    expect(seat(buying, "B3")).to_have_attribute("data-status", "SOLD")


def test_a_cancellation_elsewhere_frees_the_seat_live(open_page, client, make_user, make_session):
    session = make_session()
    other = make_user()
    page = open_page(session_url(session))
    held = hold_by_api(client, other, session["id"], ["A4"])
    expect(seat(page, "A4")).to_have_attribute("data-status", "RESERVED", timeout=LIVE_MS)
    assert client.delete(f"/reservations/{held['id']}", token=other["token"]).status == 200
    expect(seat(page, "A4")).to_have_attribute("data-status", "AVAILABLE", timeout=LIVE_MS)


# --- buying ------------------------------------------------------------------------------------


def test_a_full_purchase_ends_in_the_purchase_list_with_the_seats_sold(
    open_page, client, make_session
):
    session = make_session(movie="Paris, Texas")
    page = open_page(session_url(session))
    page.locator('[data-mode="signup"]').click()
    page.fill('input[name="name"]', "Ana")
    page.fill('input[name="email"]', "ana@example.com")
    page.fill('input[name="password"]', "a-long-password")
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    expect(page.locator("#who")).to_have_text("Ana")
    stored = json.loads(page.evaluate("sessionStorage.getItem('boxoffice.auth')"))
    assert stored["token"].count(".") == 2 and stored["role"] == "CUSTOMER"
    assert page.evaluate("localStorage.length") == 0  # the token lives only as long as the tab

    pick(page, "A1", "A2")
    expect(page.locator("#picked")).to_have_text(re.compile(r"A1\s*A2"))
    hold_picked(page)
    seconds_left = int(page.locator("[data-hold-countdown]").inner_text())
    assert 0 < seconds_left <= get_settings().hold_seconds
    expect(page.locator('[data-action="pay"]')).to_have_text("Pay 50.00")
    page.locator('[data-action="pay"]').click()

    expect(page.get_by_role("status").filter(has_text="Paid 50.00")).to_be_visible()
    expect(page.locator("[data-hold-countdown]")).to_have_count(0)
    tickets = page.locator("#purchase-list li")
    expect(tickets).to_have_count(1)
    expect(tickets.first).to_contain_text("Paris, Texas")
    expect(tickets.first).to_contain_text("Seats A1 and A2")
    for label in ("A1", "A2"):
        expect(seat(page, label)).to_have_attribute("data-status", "SOLD")
        expect(seat(page, label)).not_to_have_attribute("data-selected", "true")
    purchases = client.get("/me/purchases", token=stored["token"]).body["items"]
    assert [(p["seats"], p["amount_cents"]) for p in purchases] == [(["A1", "A2"], 5000)]


def test_cancelling_a_hold_frees_its_seats(open_page, make_user, make_session):
    session = make_session()
    buyer = make_user()
    page = open_page(session_url(session))
    log_in(page, buyer["email"])
    pick(page, "B7", "B8")
    hold_picked(page)
    expect(seat(page, "B7")).to_have_attribute("data-status", "RESERVED")
    page.locator('[data-action="cancel"]').click()
    expect(page.locator("[data-hold-countdown]")).to_have_count(0)
    for label in ("B7", "B8"):
        expect(seat(page, label)).to_have_attribute("data-status", "AVAILABLE")
    expect(page.get_by_role("status").filter(has_text="Hold cancelled")).to_be_visible()


def test_a_hold_left_to_lapse_returns_the_seats_to_available(
    open_page, make_user, make_session, hold_seconds
):
    hold_seconds(2)
    session = make_session()
    buyer = make_user()
    page = open_page(session_url(session))
    watching = open_page(session_url(session))
    log_in(page, buyer["email"])
    pick(page, "A7", "A8")
    hold_picked(page)
    assert int(page.locator("[data-hold-countdown]").inner_text()) <= 2
    expect(seat(watching, "A7")).to_have_attribute("data-status", "RESERVED", timeout=LIVE_MS)

    expect(page.locator("[data-hold-countdown]")).to_have_count(0, timeout=2_000 + LIVE_MS)
    for label in ("A7", "A8"):
        expect(seat(page, label)).to_have_attribute("data-status", "AVAILABLE", timeout=LIVE_MS)
        expect(seat(watching, label)).to_have_attribute("data-status", "AVAILABLE")
    expect(page.get_by_role("status").filter(has_text="ran out")).to_be_visible()
    expect(page.locator('[data-action="pay"]')).to_be_hidden()
    expect(page.locator('[data-action="hold"]')).to_be_visible()


# --- errors in plain words ---------------------------------------------------------------------


def test_a_seat_taken_between_pick_and_hold_shows_an_error(
    open_page, client, make_user, make_session
):
    session = make_session()
    buyer, rival = make_user(), make_user()
    # The page's clock (and so its polling) is paused after the pick: the hold request is what
    # finds the seat taken, not the next poll.
    page = open_page(session_url(session), clock=True)
    log_in(page, buyer["email"])
    pick(page, "A5", "A6")
    pause_clock(page)
    page.wait_for_timeout(300)  # a poll already on its way lands before the rival's hold
    hold_by_api(client, rival, session["id"], ["A5"])
    with page.expect_response(lambda r: r.url.endswith("/reservations")) as answer:
        page.locator('[data-action="hold"]').click()
    assert answer.value.status == 409
    assert answer.value.request.post_data_json["seats"] == ["A5", "A6"]

    expect(alert(page)).to_have_text(re.compile(r"^Seat A5 is no longer available"))
    expect(page.locator("[data-hold-countdown]")).to_have_count(0)
    expect(seat(page, "A5")).not_to_have_attribute("data-selected", "true")
    expect(seat(page, "A6")).to_have_attribute("data-selected", "true")  # still picked
    page.clock.resume()
    expect(seat(page, "A5")).to_have_attribute("data-status", "RESERVED", timeout=LIVE_MS)


def test_a_picked_seat_taken_meanwhile_is_dropped_with_an_alert(
    open_page, client, make_user, make_session
):
    session = make_session()
    rival = make_user()
    page = open_page(session_url(session))
    pick(page, "B1", "B2")
    hold_by_api(client, rival, session["id"], ["B1"])
    expect(alert(page)).to_have_text(
        re.compile(r"^Seat B1 is no longer available"), timeout=LIVE_MS
    )
    expect(seat(page, "B1")).to_have_attribute("data-status", "RESERVED")
    expect(seat(page, "B1")).not_to_have_attribute("data-selected", "true")
    expect(page.locator("#picked li")).to_have_text(["B2"])


def test_paying_a_lapsed_hold_says_it_ran_out(open_page, make_user, make_session, hold_seconds):
    hold_seconds(2)
    session = make_session()
    buyer = make_user()
    page = open_page(session_url(session), clock=True)
    log_in(page, buyer["email"])
    pick(page, "B5")
    hold_picked(page)
    # Stop the page's clock so its countdown cannot end the hold: the server must say so.
    pause_clock(page)
    page.wait_for_timeout(2_500)  # the hold's real 2 s run out on the server
    page.locator('[data-action="pay"]').click()
    expect(alert(page)).to_have_text(re.compile(r"^Your hold ran out before it was paid"))
    expect(page.locator("[data-hold-countdown]")).to_have_count(0)
    page.clock.resume()
    expect(seat(page, "B5")).to_have_attribute("data-status", "AVAILABLE", timeout=LIVE_MS)


def test_too_many_holds_are_refused_in_plain_words(open_page, make_user, make_session, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_HOLDS_PER_MINUTE", "1")
    get_settings.cache_clear()
    try:
        session = make_session()
        buyer = make_user()
        page = open_page(session_url(session))
        log_in(page, buyer["email"])
        pick(page, "A3")
        hold_picked(page)
        page.locator('[data-action="cancel"]').click()
        expect(page.locator("[data-hold-countdown]")).to_have_count(0)
        pick(page, "A4")
        page.locator('[data-action="hold"]').click()
        expect(alert(page)).to_have_text(
            re.compile(r"^Too many requests just now\. Please wait \d+ seconds? and try again\.$")
        )
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_the_per_customer_cap_is_explained_by_name(open_page, make_user, make_session):
    """The server's HoldLimitReached answer is stood in for here (page.route): this checks only
    the page's wording for the code, not the server's cap."""
    session = make_session()
    buyer = make_user()
    page = open_page(session_url(session))
    log_in(page, buyer["email"])
    page.route(
        "**/reservations",
        lambda route: route.fulfill(
            status=409,
            content_type="application/json",
            body=json.dumps(
                {
                    "Code": "HoldLimitReached",
                    "Message": "at most 4 seats per customer",
                    "limit": 4,
                    "held_seats": 3,
                }
            ),
        ),
    )
    pick(page, "A1", "A2")
    page.locator('[data-action="hold"]').click()
    expect(alert(page)).to_have_text(
        "You can have at most 4 seats of this session, held and bought together. "
        "You already have 3. Pick fewer seats."
    )


def test_picking_stops_at_the_cap_and_sign_in_errors_are_plain(open_page, make_user, make_session):
    session = make_session()  # 16 seats
    buyer = make_user()
    page = open_page(session_url(session))
    cap = min(get_settings().seats_per_customer or 10, 10)
    labels = [f"{row}{n}" for row in "AB" for n in range(1, 9)]
    pick(page, *labels[:cap])
    seat(page, labels[cap]).click()
    expect(alert(page)).to_have_text(f"You can pick up to {cap} seats at a time.")
    expect(seat(page, labels[cap])).not_to_have_attribute("data-selected", "true")

    page.locator('[data-action="hold"]').click()  # not signed in yet
    expect(alert(page)).to_have_text("Log in or create an account to hold these seats.")
    expect(page.locator('input[name="email"]')).to_be_focused()

    page.fill('input[name="email"]', buyer["email"])
    page.fill('input[name="password"]', "not-the-password")
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    expect(alert(page)).to_have_text("That email and password do not match an account.")

    page.locator('[data-mode="signup"]').click()
    page.fill('input[name="name"]', "Someone")
    page.fill('input[name="password"]', PASSWORD)
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    expect(alert(page)).to_have_text("An account with this email already exists. Log in instead.")


# --- keyboard and phone ------------------------------------------------------------------------


def test_the_map_works_with_the_keyboard(open_page, make_user, make_session):
    session = make_session()  # rows A-B, seats 1-8
    buyer = make_user()
    page = open_page(session_url(session))
    log_in(page, buyer["email"])
    expect(seat(page, "A1")).to_have_attribute("data-status", "AVAILABLE")
    assert page.locator('[data-seat][tabindex="0"]').count() == 1  # the map is one tab stop

    page.locator(".back").focus()
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.seat") is not None:
            break
    expect(seat(page, "A1")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(seat(page, "A2")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(seat(page, "B2")).to_be_focused()
    page.keyboard.press("End")
    expect(seat(page, "B8")).to_be_focused()
    page.keyboard.press("Home")
    expect(seat(page, "B1")).to_be_focused()
    page.keyboard.press("Space")
    expect(seat(page, "B1")).to_have_attribute("data-selected", "true")
    expect(seat(page, "B1")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    expect(seat(page, "B1")).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="B1, available", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )

    page.keyboard.press("Tab")  # out of the map, to the first enabled action
    expect(page.locator('[data-action="hold"]')).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-hold-countdown]")).to_be_visible()
    expect(seat(page, "B1")).to_have_attribute("data-status", "RESERVED")
    expect(page.locator('[data-action="pay"]')).to_be_focused()  # the next step
    page.keyboard.press("Shift+Tab")  # back into the map, on the seat last visited
    expect(seat(page, "B1")).to_be_focused()


def test_the_map_fits_a_phone_and_takes_taps(open_page, client, make_user, make_session):
    session = make_session(movie="Playtime", rows=8, seats_per_row=12)
    other = make_user()
    hold_by_api(client, other, session["id"], ["C5", "C6"])
    page = open_page(
        session_url(session),
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    expect(seat(page, "C5")).to_have_attribute("data-status", "RESERVED")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    boxes = page.locator("[data-seat]").evaluate_all(
        "seats => seats.map(s => { const b = s.getBoundingClientRect();"
        " return [b.left, b.right, b.width, b.height]; })"
    )
    assert len(boxes) == 96
    assert all(left >= 0 and right <= PHONE["width"] for left, right, _, _ in boxes)
    assert all(width >= 24 and height >= 24 for _, _, width, height in boxes)  # touch targets

    seat(page, "H12").tap()
    expect(seat(page, "H12")).to_have_attribute("data-selected", "true")
    map_bottom = page.locator("#seat-map").bounding_box()
    hold_button = page.locator('[data-action="hold"]').bounding_box()
    assert hold_button["y"] > map_bottom["y"] + map_bottom["height"]  # below the map, not over it
    assert hold_button["x"] + hold_button["width"] <= PHONE["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "seat-map-phone.png"), full_page=True)


def test_desktop_screenshot(open_page, client, make_user, make_session):
    session = make_session(movie="Playtime", rows=8, seats_per_row=14)
    buyer, other = make_user(), make_user()
    sold = hold_by_api(client, buyer, session["id"], ["D6", "D7", "D8", "D9"])
    assert client.post(f"/reservations/{sold['id']}/payment", token=buyer["token"]).status == 200
    hold_by_api(client, other, session["id"], ["C3", "C4"])
    page = open_page(session_url(session), viewport=DESKTOP)
    log_in(page, make_user()["email"])
    pick(page, "F7", "F8")
    expect(seat(page, "D6")).to_have_attribute("data-status", "SOLD")
    # Side by side on a desktop: the booking panel to the right of the map.
    map_box = page.locator(".map-card").bounding_box()
    panel_box = page.locator("#basket").bounding_box()
    assert panel_box["x"] >= map_box["x"] + map_box["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "seat-map-desktop.png"))


# --- managers ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("event_runner")
def test_a_manager_sees_the_session_s_sales_stay_current(
    open_page, client, manager, make_user, make_session
):
    session = make_session()
    buyer = make_user()
    page = open_page(session_url(session))
    log_in(page, manager["email"])
    expect(page.locator("#role-badge")).to_be_visible()
    expect(page.get_by_role("heading", name="Sales of this session")).to_be_visible()
    expect(page.locator('[data-stat="sold_seats"]')).to_have_text("0")
    expect(page.locator("#basket")).to_be_hidden()  # managers do not buy

    held = hold_by_api(client, buyer, session["id"], ["A1", "A2"])
    assert client.post(f"/reservations/{held['id']}/payment", token=buyer["token"]).status == 200
    # Counted by the analytics subscriber from the payment event: eventually, within seconds.
    expect(page.locator('[data-stat="sold_seats"]')).to_have_text("2", timeout=20_000)
    expect(page.locator('[data-stat="revenue_cents"]')).to_have_text("50.00")
    expect(seat(page, "A1")).to_have_attribute("data-status", "SOLD")
