"""On a failed browser test: a screenshot of the page as it was, and the server's log in the report."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_browser import ARTIFACTS, SERVER_LOG

LOG_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    page = getattr(item, "funcargs", {}).get("page")
    if page is not None:
        path = ARTIFACTS / f"FAILED-{item.name}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("page at the failure", str(path)))
        except Exception as exc:  # the browser itself may be what failed
            report.sections.append(("page at the failure", f"no screenshot: {exc}"))
    if SERVER_LOG.exists():
        tail = SERVER_LOG.read_text(errors="replace").splitlines()[-LOG_LINES:]
        report.sections.append((f"server log, last {LOG_LINES} lines", "\n".join(tail)))
