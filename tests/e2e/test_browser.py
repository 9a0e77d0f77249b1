"""End to end in a real headless Chromium: the journey of a new team, from the first owner on.

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
from pathlib import Path

import pytest

from core.config import ROOT

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
    shot(page, "04-import-summary", readme=True)
    # data/sample_leads.csv has three rows the import must refuse (see tests/core/leads/test_importer.py);
    # a fourth has a junk phone but a good email, so it is kept with a warning.
    rejected = page.get_by_test_id("stMetric").filter(has_text="Rejected").get_by_test_id("stMetricValue")
    playwright_api.expect(rejected).to_have_text("3")


def test_an_sms_campaign_from_draft_to_completed_and_its_costs(server: str, page) -> None:  # type: ignore[no-untyped-def]
    # The sample leads live in many time zones; a window open all day lets the run finish now,
    # whatever the hour CI runs at.
    page.goto(f"{server}/admin")
    page.get_by_role("tab", name="Settings").wait_for()
    idle(page)
    page.get_by_role("tab", name="Settings").click()
    textbox(page, "Send window start (HH:MM, recipient's time)").fill("00:00")
    textbox(page, "Send window end (HH:MM)").fill("00:00")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved").first.wait_for()

    page.goto(f"{server}/campaigns")
    page.get_by_role("heading", name="New campaign").wait_for()
    idle(page)
    textbox(page, "Name").fill("Spring SMS")
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_role("heading", name="Spring SMS · draft").wait_for()
    idle(page)

    page.get_by_role("tab", name="Preview").click()
    page.get_by_role("button", name="Preview the draft").click()
    page.get_by_text("Reply STOP to opt out").first.wait_for(timeout=60_000)
    page.get_by_text("GSM-7").first.wait_for()
    idle(page)
    shot(page, "05-campaign-preview", readme=True)

    page.get_by_role("tab", name="Run").click()
    page.get_by_role("button", name="Start now").click()
    page.get_by_text("started").first.wait_for()

    page.goto(f"{server}/monitor")
    page.get_by_role("heading", name="Run monitor").wait_for()
    # The status line of a finished run says what happened: "Completed: 20 sent, 4 skipped".
    page.get_by_text("Completed: ").first.wait_for(timeout=180_000)
    shot(page, "06-run-monitor-completed", readme=True)

    page.goto(server)  # the Overview is the default page
    page.get_by_text("Reply rate").first.wait_for()
    shot(page, "07-overview", readme=True)

    page.goto(f"{server}/costs")
    page.get_by_role("heading", name="Costs").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    shot(page, "08-costs", readme=True)

    # A lead's page, by its shareable URL: the first sample lead, messaged by the run above.
    page.goto(f"{server}/leads?lead=1")
    page.get_by_role("heading", name="Katherine Thompson").wait_for()
    idle(page)
    page.get_by_role("tab", name="Campaigns (1)").click()
    idle(page)
    shot(page, "09-lead-page")

    # Signing out deletes the cookie: a new visit finds the sign-in form, not the session.
    idle(page)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Sign in to Leadflow").wait_for()
    page.wait_for_function(f"!document.cookie.includes('{COOKIE_NAME}=')")
    page.goto(server)
    page.get_by_text("Sign in to Leadflow").wait_for()
