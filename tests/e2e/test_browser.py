"""End to end in a real headless Chromium: the journey of a new team, from the first owner on.

The first owner signs up and imports the sample leads; a first SMS campaign runs to completion;
a lead opened from the lead table shows its campaign and message; the admin then caps contact
at one message per lead a day and skips public holidays, moves a lead to a country on holiday
today, and a second campaign the same day holds every lead back, the reason shown in words. Last, while a
campaign with a follow-up runs, a lead answers by SMS through Twilio's signed webhook: the
reply agent stops that lead's sequence and the Inbox shows the reply, classified.

Skipped with a reason where Chromium or Playwright is missing; `.ci/run` installs Chromium.
Screenshots of every stage are saved under test-artifacts/ (and the main ones refresh the
README's screenshots when UPDATE_README_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from core.compliance.public_holidays import holiday_calendars, holiday_name
from core.config import ROOT
from core.db import Database
from core.inbound.urls import TWILIO_SMS_PATH
from core.models import Campaign, CampaignLead, InboundMessage, Lead, Message
from core.tenants import default_time_zone
from tests.api.conftest import incoming_sms
from tests.conftest import make_settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
README_SHOTS = ROOT / "docs" / "screenshots"
SERVER_LOG = ARTIFACTS / "server.log"
PASSWORD = "correct horse battery"
COOKIE_NAME = "leadflow_auth"  # the default LEADFLOW_COOKIE_NAME
# The server's Twilio auth token: the test signs its webhook with it as Twilio would.
TWILIO_TOKEN = "e2e-twilio-auth-token-0123456789"

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium "
                       "(apt-get install -y chromium); .ci/run installs it"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's SQLite file; the tests read it to check what the runner did."""
    return tmp_path_factory.mktemp("e2e") / "leadflow.db"


@pytest.fixture(scope="module")
def api_url() -> str:
    """The HTTP service the app starts beside the dashboard; also its public URL, over which
    Twilio's signatures are computed (no proxy in front of it here)."""
    return f"http://127.0.0.1:{_free_port()}"


@pytest.fixture(scope="module")
def server(database_file: Path, api_url: str) -> Iterator[str]:
    """The real app, as the README starts it, on a fresh SQLite file with the embedded runner
    and the embedded HTTP service."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    env.update(LEADFLOW_DATABASE_URL=f"sqlite:///{database_file}", LEADFLOW_DEV_MODE="true",
               LEADFLOW_TICK_SECONDS="0.5", LEADFLOW_API_HOST="127.0.0.1",
               LEADFLOW_API_PORT=api_url.rsplit(":", 1)[1], LEADFLOW_PUBLIC_URL=api_url,
               LEADFLOW_TWILIO_AUTH_TOKEN=TWILIO_TOKEN)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A file, not a pipe: nobody reads a pipe while the tests run, and a server whose pipe is
    # full blocks in its next log line. The file is shown when a test fails (conftest.py).
    log = SERVER_LOG.open("w")
    process = subprocess.Popen(
        ["streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log.close()
                pytest.fail(f"the app did not start: {SERVER_LOG.read_text()[-3000:]}")
            time.sleep(0.3)
    yield url
    os.killpg(process.pid, 15)
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        yield tab
        context.close()
        browser.close()


def shot(page: object, name: str, *, readme: bool = False) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    if readme and os.environ.get("UPDATE_README_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SHOTS / f"{name}.png")


def idle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait for the script run that drew the page to finish.

    While a run is in progress, elements of the previous run stay on screen until the new run
    replaces them: text typed into one of those is lost (a sign-in then fails with an empty
    password). Called after the element that marks the new page has appeared, so the run
    waited for is the one that drew it.
    """
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def centre(element) -> None:  # type: ignore[no-untyped-def]
    """Scroll the page so that `element` is in the middle of the screenshot."""
    element.evaluate("e => e.scrollIntoView({block: 'center'})")


def textbox(page, name: str):  # type: ignore[no-untyped-def]
    return page.get_by_role("textbox", name=name, exact=True)


def test_a_new_team_from_first_owner_to_imported_leads(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server)
    page.get_by_text("Welcome to Leadflow").wait_for()
    idle(page)
    shot(page, "01-first-owner")
    textbox(page, "Organisation name").fill("Acme Inc.")
    textbox(page, "Your name").fill("Olga Owner")
    textbox(page, "Username").fill("olga")
    textbox(page, "Email (optional)").fill("olga@example.com")
    textbox(page, "Password").fill(PASSWORD)
    textbox(page, "Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create the owner account").click()

    page.get_by_text("Sign in to Leadflow").wait_for()
    idle(page)
    textbox(page, "Username").fill("olga")
    textbox(page, "Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Start by importing leads").wait_for()
    # The sign-in cookie is set by a component once its frame has loaded; every later visit
    # (each page.goto below is a new session) is signed in by it.
    page.wait_for_function(f"document.cookie.includes('{COOKIE_NAME}=')")
    shot(page, "02-overview-empty")

    page.goto(f"{server}/leads")
    page.get_by_role("heading", name="Leads").wait_for()
    idle(page)
    page.locator("input[type=file]").set_input_files(str(ROOT / "data" / "sample_leads.csv"))
    page.get_by_role("button", name="Preview").click()
    import_button = page.get_by_role("button", name="Import")
    import_button.first.wait_for()
    idle(page)
    shot(page, "03-import-preview")
    import_button.first.click()
    page.get_by_text("finished.").wait_for(timeout=60_000)
    # data/sample_leads.csv has three rows the import must refuse (see tests/core/leads/test_importer.py);
    # a fourth has a junk phone but a good email, so it is kept with a warning.
    rejected = page.get_by_test_id("stMetric").filter(has_text="Rejected").get_by_test_id("stMetricValue")
    playwright_api.expect(rejected).to_have_text("3")
    idle(page)
    shot(page, "04-import-summary", readme=True)


def save_settings(page, fields: dict[str, str], *, tick: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Admin > Settings: fill these text fields (by label), tick one checkbox, save."""
    page.get_by_role("tab", name="Settings").wait_for()
    idle(page)
    page.get_by_role("tab", name="Settings").click()
    for label, value in fields.items():
        textbox(page, label).fill(value)
    if tick is not None:
        page.get_by_test_id("stCheckbox").filter(has_text=tick).locator("label").click()
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved").first.wait_for()


def start_campaign(page, server: str, name: str, *, new: bool,  # type: ignore[no-untyped-def]
                   shape: Callable[[], None] | None = None) -> None:
    """Campaigns: write an SMS campaign with the defaults (and what `shape` changes in the
    editor), then create it; the caller starts it from the Run tab."""
    page.goto(f"{server}/campaigns")
    page.get_by_role("heading", name="Campaigns").wait_for()
    idle(page)
    if new:  # campaigns exist: the picker opens the newest, "New campaign…" opens the editor
        page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Campaign", exact=True)).click()
        page.get_by_role("option", name="New campaign…").click()
    page.get_by_role("heading", name="New campaign").wait_for()
    idle(page)
    textbox(page, "Name").fill(name)
    if shape is not None:
        shape()
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_role("heading", name=f"{name} · draft").wait_for()
    idle(page)


def wait_for_cell(page, text: str) -> None:  # type: ignore[no-untyped-def]
    """Wait for a cell of an st.dataframe holding `text`. The grid draws on a canvas; the cells
    it shows are also kept, as a table, inside the canvas element (never visible itself)."""
    cell = page.locator('[data-testid="stDataFrame"] td[role="gridcell"]', has_text=text).first
    cell.wait_for(state="attached")


def test_an_sms_campaign_from_draft_to_completed_and_its_costs(server: str, page) -> None:  # type: ignore[no-untyped-def]
    # The sample leads live in many time zones; a window open all day lets the run finish now,
    # whatever the hour CI runs at. An SMS campaign needs a sender id before it may start.
    page.goto(f"{server}/admin")
    save_settings(page, {
        "Send window start (HH:MM, recipient's time)": "00:00",
        "Send window end (HH:MM; before the start: the next day)": "00:00",
        "SMS sender id (a +number or up to 11 letters; unique to you)": "Acme",
    })

    start_campaign(page, server, "Spring SMS", new=False)
    page.get_by_role("tab", name="Preview").click()
    page.get_by_role("button", name="Preview the draft").click()
    page.get_by_text("Reply STOP to opt out").first.wait_for(timeout=60_000)
    page.get_by_text("GSM-7").first.wait_for()
    idle(page)
    centre(page.get_by_text("Reply STOP to opt out").first)
    shot(page, "05-campaign-preview", readme=True)

    # The pre-flight checklist passes (sender id set, audience not empty) and the run starts.
    page.get_by_role("tab", name="Run").click()
    page.get_by_text("Before it starts").wait_for()
    page.get_by_role("button", name="Start now").click()
    page.get_by_text("started").first.wait_for()

    page.goto(f"{server}/monitor")
    page.get_by_role("heading", name="Run monitor").wait_for()
    # The status line of a finished run says what happened: "Completed: 195 sent".
    page.get_by_text("Completed: ").first.wait_for(timeout=180_000)
    idle(page)  # the run's end redraws the whole page (the picker's status with it)
    picker = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Campaign", exact=True))
    playwright_api.expect(picker.locator("input")).to_have_value("Spring SMS · completed (#1)")
    shot(page, "06-run-monitor-completed", readme=True)

    page.goto(server)  # the Overview is the default page
    page.get_by_text("Reply rate").first.wait_for()
    shot(page, "07-overview", readme=True)

    page.goto(f"{server}/costs")
    page.get_by_role("heading", name="Costs").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    shot(page, "08-costs", readme=True)


def test_a_lead_opened_from_the_lead_table_shows_its_campaign_and_message(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/leads")
    page.get_by_role("tab", name="Lead table").wait_for()
    idle(page)
    page.get_by_role("tab", name="Lead table").click()
    textbox(page, "Search").fill("katherine.thompson")
    textbox(page, "Search").press("Enter")
    page.get_by_text("1 lead · page 1 of 1").wait_for()
    idle(page)
    # One click on the row's selection box (the grid is a canvas: a click by position, below
    # the header row) opens the lead's page.
    page.get_by_test_id("stDataFrame").first.click(position={"x": 12, "y": 35 + 17})
    page.get_by_role("heading", name="Katherine Thompson").wait_for()
    assert "lead=1" in page.url  # a page that can be shared
    idle(page)
    page.get_by_role("tab", name="Campaigns (1)").click()
    wait_for_cell(page, "Spring SMS")
    page.get_by_role("tab", name="Messages (1)").click()
    wait_for_cell(page, "Reply STOP to opt out")
    shot(page, "09-lead-page", readme=True)


def _holiday_today() -> tuple[str, str, str] | None:
    """A country with a public holiday today in its main time zone, its zone and the holiday's
    name; of several, the one whose day has the most left, so that it lasts the run."""
    now = datetime.now(UTC)
    found = []
    for code, _label in holiday_calendars():
        zone = default_time_zone(code)
        local = now.astimezone(ZoneInfo(zone))
        name = holiday_name(code, local.date())
        if name:
            midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), ZoneInfo(zone))
            found.append((midnight - local, code, zone, name))
    if not found:
        return None
    _left, code, zone, name = max(found)
    return code, zone, name


def test_a_second_campaign_waits_for_the_contact_cap_and_for_a_public_holiday(  # type: ignore[no-untyped-def]
        server: str, page) -> None:
    today = _holiday_today()
    if today is None:
        pytest.skip("no country of the holidays package has a public holiday today")
    country, zone, holiday = today

    # The admin caps contact at one message per lead a day and spares recipients their holidays.
    page.goto(f"{server}/admin")
    save_settings(page, {"At most messages per lead a day (all campaigns; blank: no cap)": "1"},
                  tick="Don't send on public holidays")
    page.get_by_text("at most 1 message per lead a day", exact=False).first.wait_for()

    # The first sample lead, messaged this morning, moves to a country on holiday today.
    page.goto(f"{server}/leads?lead=1")
    page.get_by_role("heading", name="Katherine Thompson").wait_for()
    idle(page)
    page.get_by_text("Edit this lead").click()
    textbox(page, "Country").fill(country)
    textbox(page, "Time zone").fill(zone)
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved: ").wait_for()

    start_campaign(page, server, "Autumn SMS", new=True)
    page.get_by_role("tab", name="Run").click()
    page.get_by_role("button", name="Start now").click()
    page.get_by_text("started").first.wait_for()

    # Every lead messaged today waits: nothing goes out until tomorrow.
    page.goto(f"{server}/monitor")
    page.get_by_role("heading", name="Run monitor").wait_for()
    page.get_by_text("Nothing to send right now").first.wait_for(timeout=180_000)
    # Why they wait, grouped: the cap for the leads messaged this morning, the holiday for one.
    page.get_by_text("Why leads wait").wait_for()
    wait_for_cell(page, "contact cap reached (1 message per lead a day, all campaigns together)")
    wait_for_cell(page, f"public holiday in {country} ({holiday})")
    idle(page)
    centre(page.get_by_text("Why leads wait"))
    shot(page, "10-run-monitor-held-back", readme=True)

    # A lead's page says why it waits, in words: the cap for one, the holiday for the other.
    page.goto(f"{server}/leads?lead=2")
    page.get_by_role("heading", name="Alan Johnson").wait_for()
    idle(page)
    page.get_by_role("tab", name="Campaigns (2)").click()
    wait_for_cell(page, "contact cap reached (1 message per lead a day")
    shot(page, "11-lead-held-by-cap")

    page.goto(f"{server}/leads?lead=1")
    page.get_by_role("heading", name="Katherine Thompson").wait_for()
    idle(page)
    page.get_by_role("tab", name="Campaigns (2)").click()
    wait_for_cell(page, f"public holiday in {country} ({holiday})")
    shot(page, "12-lead-held-by-holiday", readme=True)

    # Signing out deletes the cookie: a new visit finds the sign-in form, not the session.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Sign in to Leadflow").wait_for()
    page.wait_for_function(f"!document.cookie.includes('{COOKIE_NAME}=')")
    page.goto(server)
    page.get_by_text("Sign in to Leadflow").wait_for()


REPLY_TAG = "reply-e2e"
REPLYING = ("Rita", "Replier", "+14155550171")  # answers the first touch
WAITING = ("Will", "Waiting", "+14155550172")  # does not: her follow-up stays due
REPLY_TEXT = "Sounds interesting, what does it cost?"
SMS_SENDER = "Acme"  # the tenant's SMS sender id, saved on the Admin page above


def sign_in_again(page, server: str) -> None:  # type: ignore[no-untyped-def]
    """The Overview, signed in: the holiday test signs out at its end (unless it was skipped)."""
    page.goto(server)
    sign_in = page.get_by_text("Sign in to Leadflow")
    sign_in.or_(page.get_by_text("Reply rate").first).first.wait_for()
    if sign_in.is_visible():
        idle(page)
        textbox(page, "Username").fill("olga")
        textbox(page, "Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Reply rate").first.wait_for()
        page.wait_for_function(f"document.cookie.includes('{COOKIE_NAME}=')")


def import_leads(page, server: str, csv_file: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/leads")
    page.get_by_role("heading", name="Leads").wait_for()
    idle(page)
    page.locator("input[type=file]").set_input_files(str(csv_file))
    page.get_by_role("button", name="Preview").click()
    import_button = page.get_by_role("button", name="Import")
    import_button.first.wait_for()
    idle(page)
    import_button.first.click()
    page.get_by_text("finished.").wait_for(timeout=60_000)


def poll(what: str, check: Callable[[], object], *, timeout: float = 180.0) -> object:
    """`check()`'s first truthy answer, asked every half second; a failure after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}")
        time.sleep(0.5)


def post_twilio_sms(api_url: str, params: dict[str, str]) -> httpx.Response:
    """Twilio's incoming-message webhook: form-encoded, signed with the auth token over the
    public URL (the twilio SDK's own RequestValidator computes the signature Twilio sends)."""
    url = api_url + TWILIO_SMS_PATH
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    return httpx.post(url, data=params, timeout=60,
                      headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"})


def test_a_reply_by_sms_during_a_campaign_stops_that_leads_follow_up_and_shows_in_the_inbox(  # type: ignore[no-untyped-def]
        server: str, api_url: str, database_file: Path, page, tmp_path: Path) -> None:
    sign_in_again(page, server)
    # The holiday test may have spared recipients their public holidays: this campaign must run
    # today whatever the day is where the two new leads live.
    page.goto(f"{server}/admin")
    page.get_by_role("tab", name="Settings").wait_for()
    idle(page)
    page.get_by_role("tab", name="Settings").click()
    holidays = page.get_by_test_id("stCheckbox").filter(has_text="Don't send on public holidays")
    if holidays.locator("input").is_checked():
        save_settings(page, {}, tick="Don't send on public holidays")

    # Two new leads, never messaged today (the contact cap leaves them alone), with a tag of their own.
    csv_file = tmp_path / "two_leads.csv"
    rows = [f"{first},{last},{phone},{first.lower()}.{last.lower()}@reply-test.example.com,Reply Test,"
            f"Buyer,Software,,San Francisco,United States,,{REPLY_TAG}"
            for first, last, phone in (REPLYING, WAITING)]
    csv_file.write_text("First Name,Last Name,Mobile,E-mail Address,Company,Job Title,Industry,Website,"
                        "City,Country,Notes,Tags\n" + "\n".join(rows) + "\n")
    import_leads(page, server, csv_file)

    # An SMS campaign for them with a follow-up (the default delay: 72 hours after the first touch).
    def two_steps_for_the_tag() -> None:
        page.get_by_role("button", name="Add a follow-up").click()
        page.get_by_role("spinbutton", name="Follow-up 1: hours after the previous step").wait_for()
        idle(page)
        page.get_by_test_id("stMultiSelect").filter(has_text="Tags (any of)").click()
        page.get_by_role("option", name=REPLY_TAG).click()
        page.keyboard.press("Escape")
        page.get_by_text("2 leads", exact=True).first.wait_for()
        idle(page)

    start_campaign(page, server, "Winter follow-up", new=True, shape=two_steps_for_the_tag)
    page.get_by_role("tab", name="Run").click()
    page.get_by_role("button", name="Start now").click()
    page.get_by_text("started").first.wait_for()

    database = Database(make_settings(f"sqlite:///{database_file}"))
    try:
        def enrolments() -> dict[str | None, CampaignLead]:
            with database.session(system=True, read_only=True) as session:
                found = session.execute(
                    select(Lead.phone, CampaignLead).join(Campaign, Campaign.id == CampaignLead.campaign_id)
                    .join(Lead, Lead.id == CampaignLead.lead_id).where(Campaign.name == "Winter follow-up")
                ).all()
            return {phone: enrolment for phone, enrolment in found}

        def messages(lead_phone: str) -> list[Message]:
            with database.session(system=True, read_only=True) as session:
                return list(session.scalars(
                    select(Message).join(Lead, Lead.id == Message.lead_id)
                    .join(Campaign, Campaign.id == Message.campaign_id)
                    .where(Lead.phone == lead_phone, Campaign.name == "Winter follow-up")
                ).all())

        # Both first touches go out; each lead's follow-up is then due in 72 hours.
        poll("both first touches to be sent", lambda: [e.step for e in enrolments().values()] == [1, 1])
        replying, waiting = enrolments()[REPLYING[2]], enrolments()[WAITING[2]]
        assert replying.status == waiting.status == "pending"
        first_touch = messages(REPLYING[2])
        assert [(m.step, m.status) for m in first_touch] == [(0, "sent")]

        # Rita answers by SMS: Twilio posts it, signed, to the running service.
        poll("the HTTP service to answer", lambda: _healthy(f"{api_url}/api/health"))
        answer = post_twilio_sms(api_url, incoming_sms(
            "SM" + "e2e0".ljust(32, "0"), REPLY_TEXT, sender=REPLYING[2], to=SMS_SENDER))
        assert answer.status_code == 200, answer.text

        # The reply agent (the runner's "replies" job) reads it, and stops her sequence.
        def classified() -> InboundMessage | None:
            with database.session(system=True, read_only=True) as session:
                row = session.scalar(select(InboundMessage).where(InboundMessage.body == REPLY_TEXT))
            # classified_at, not processed_at: a claim sets processed_at when the agent takes the
            # message, before it has classified it.
            return row if row is not None and row.classified_at is not None else None

        reply = poll("the reply agent to classify the reply", classified)
        assert isinstance(reply, InboundMessage)
        assert reply.classification in ("question", "interested"), reply.classification_detail
        assert reply.lead_id == replying.lead_id and reply.campaign_id == replying.campaign_id

        after = enrolments()
        assert after[REPLYING[2]].status == "sent" and after[REPLYING[2]].next_action_at is None
        assert after[REPLYING[2]].status_reason == f"replied ({reply.classification}): sequence stopped"
        assert [m.step for m in messages(REPLYING[2])] == [0]  # her follow-up is never sent
        # Will did not answer: his follow-up is still due, 72 hours after his first touch.
        still = after[WAITING[2]]
        assert (still.status, still.step) == ("pending", 1)
        sent_at = messages(WAITING[2])[0].sent_at
        assert still.next_action_at is not None and sent_at is not None
        assert abs(still.next_action_at - sent_at - timedelta(hours=72)) < timedelta(minutes=5)
        assert [m.step for m in messages(WAITING[2])] == [0]
    finally:
        database.engine.dispose()

    # The Inbox shows her reply, classified, with the campaign it answers.
    page.goto(f"{server}/inbox")
    page.get_by_role("heading", name="Inbox").wait_for()
    page.get_by_text(REPLY_TEXT).first.wait_for()
    label = reply.classification.capitalize()
    summary = (page.get_by_test_id("stMarkdownContainer").filter(has_text=f"{REPLYING[0]} {REPLYING[1]}")
               .filter(has_text="Winter follow-up"))
    playwright_api.expect(summary.locator("strong", has_text=re.compile(f"^{label}$"))).to_be_visible()
    idle(page)
    shot(page, "13-inbox-reply-classified")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.TransportError:
        return False
