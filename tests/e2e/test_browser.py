"""End to end in a real headless Chromium: the journey of a new team, from the first owner on.

The first owner signs up and imports the sample leads; a first SMS campaign runs to completion;
a lead opened from the lead table shows its campaign and message; the admin then caps contact
at one message per lead a day and skips public holidays, moves a lead to a country on holiday
today, and a second campaign the same day holds every lead back, the reason shown in words.

Skipped with a reason where Chromium or Playwright is missing; `.ci/run` installs Chromium.
Screenshots of every stage are saved under test-artifacts/ (and the main ones refresh the
README's screenshots when UPDATE_README_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.compliance.public_holidays import holiday_calendars, holiday_name
from core.config import ROOT
from core.tenants import default_time_zone

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
README_SHOTS = ROOT / "docs" / "screenshots"
SERVER_LOG = ARTIFACTS / "server.log"
PASSWORD = "correct horse battery"
COOKIE_NAME = "leadflow_auth"  # the default LEADFLOW_COOKIE_NAME

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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app, as the README starts it, on a fresh SQLite file with the embedded runner."""
    port = _free_port()
    db_file = tmp_path_factory.mktemp("e2e") / "leadflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    env.update(LEADFLOW_DATABASE_URL=f"sqlite:///{db_file}", LEADFLOW_DEV_MODE="true",
               LEADFLOW_TICK_SECONDS="0.5")
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


def start_campaign(page, server: str, name: str, *, new: bool) -> None:  # type: ignore[no-untyped-def]
    """Campaigns: write an SMS campaign with the defaults, then start it from the Run tab."""
    page.goto(f"{server}/campaigns")
    page.get_by_role("heading", name="Campaigns").wait_for()
    idle(page)
    if new:  # campaigns exist: the picker opens the newest, "New campaign…" opens the editor
        page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Campaign", exact=True)).click()
        page.get_by_role("option", name="New campaign…").click()
    page.get_by_role("heading", name="New campaign").wait_for()
    idle(page)
    textbox(page, "Name").fill(name)
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
