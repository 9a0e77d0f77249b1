"""Research: facts with sources from the lead, the playbook and the company page, fetched safely."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.config import Settings
from core.pipeline.research import (
    ResearchFetchError,
    condense_by_rules,
    fetch_page_text,
    lead_facts,
    playbook_facts,
    web_facts,
)
from core.pipeline.service import PipelineRuntime, process_campaign_lead
from tests.conftest import make_settings
from tests.core.pipeline.conftest import NOW, WORKER, Seed

HOME = b"""<html><head><title>Analytical Engines</title>
<meta name="description" content="Analytical Engines builds calculating machines for insurers.">
<script>var secret = "do not read me";</script></head>
<body><h1>Welcome</h1>
<p>We shipped our 100th engine to a Lloyd's syndicate this spring, a record.</p></body></html>"""
BIG = (
    b"<html><body><p>"
    + b"filler text " * 100_000
    # Long enough to be kept as a paragraph (the extractor drops short ones): only the cap hides it.
    + b"</p><p>AFTER THE CAP: a marker paragraph long enough to be kept as a fact.</p></body></html>"
)


class Site(ThreadingHTTPServer):
    daemon_threads = True
    bytes_sent = 0


class _Handler(BaseHTTPRequestHandler):
    server: Site
    requests = 0  # GET requests answered since the `site` fixture started

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        type(self).requests += 1
        routes = {
            "/": (200, "text/html", HOME),
            "/big": (200, "text/html", BIG),
            "/pdf": (200, "application/pdf", b"%PDF-1.4"),
            "/missing": (404, "text/html", b"no"),
        }
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(2)
        status, kind, body = routes.get(self.path, (200, "text/html", HOME))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for start in range(0, len(body), 65536):
                self.wfile.write(body[start : start + 65536])
                self.server.bytes_sent += len(body[start : start + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def site() -> Iterator[str]:
    _Handler.requests = 0
    server = Site(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def allowing(**overrides: Any) -> Settings:
    return make_settings("sqlite://", research_fetch_allow_private=True, **overrides)


def test_page_text_has_description_and_paragraphs_but_no_scripts(site: str) -> None:
    url, text = fetch_page_text(site + "/", allowing())
    assert url == site + "/"
    assert "calculating machines for insurers" in text and "100th engine" in text
    assert "do not read me" not in text


def test_redirects_are_followed_and_facts_carry_the_final_url(site: str) -> None:
    facts = web_facts(site + "/moved", allowing())
    assert facts[0] == {
        "fact": "Analytical Engines builds calculating machines for insurers.",
        "source": site + "/",
    }


def test_only_the_first_megabyte_is_read(site: str) -> None:
    _, uncapped = fetch_page_text(site + "/big", allowing(research_fetch_max_bytes=10_000_000))
    assert "AFTER THE CAP" in uncapped  # the marker is read when the cap does not cut it off
    _, text = fetch_page_text(site + "/big", allowing(research_fetch_max_bytes=100_000))
    assert "filler text" in text and "AFTER THE CAP" not in text


@pytest.mark.parametrize(
    ("path", "overrides", "message"),
    [
        ("/", {"research_fetch_allow_private": False}, "private address"),
        ("/pdf", {}, "not a web page"),
        ("/missing", {}, "answered 404"),
        ("/slow", {"research_fetch_timeout_seconds": 0.3}, "ReadTimeout"),
    ],
)
def test_refusals(site: str, path: str, overrides: dict[str, Any], message: str) -> None:
    settings = make_settings("sqlite://", **{"research_fetch_allow_private": True, **overrides})
    with pytest.raises(ResearchFetchError, match=message):
        fetch_page_text(site + path, settings)


class Rebinding:
    """A resolver whose first answer for the name is public and every later one the test site."""

    PUBLIC = "93.184.215.14"

    def __init__(self, name: str, real: Any) -> None:
        self.name, self.real, self.asked = name, real, 0

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        self.asked += 1
        address = self.PUBLIC if self.asked == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


def test_a_second_dns_answer_cannot_send_the_fetch_to_a_private_host(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = site.rsplit(":", 1)[1]
    resolver = Rebinding("rebind.example", socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    settings = make_settings("sqlite://", research_fetch_timeout_seconds=0.5)
    # The name is resolved once, vetted, and that address is the one connected to (the public
    # one, unreachable here): the private answer that would come next is never asked for.
    with pytest.raises(ResearchFetchError, match="cannot fetch"):
        fetch_page_text(f"http://rebind.example:{port}/", settings)
    assert resolver.asked == 1
    assert _Handler.requests == 0


def test_a_name_that_resolves_to_a_private_address_is_refused(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = site.rsplit(":", 1)[1]
    resolver = Rebinding("inside.example", socket.getaddrinfo)
    resolver.asked = 1  # every answer is the private one
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(ResearchFetchError, match="inside.example resolves to a private address"):
        fetch_page_text(f"http://inside.example:{port}/", make_settings("sqlite://"))
    assert _Handler.requests == 0
    # The same name with private addresses allowed (a test setting) is fetched from that address.
    _, text = fetch_page_text(f"http://inside.example:{port}/", allowing())
    assert "100th engine" in text and _Handler.requests == 1


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(ResearchFetchError, match="only http and https"):
        fetch_page_text(url, allowing())


def test_lead_and_playbook_facts_with_sources() -> None:
    lead = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "title": "CTO",
        "company": "AE",
        "industry": "Software",
        "notes": "Met at expo",
    }
    assert lead_facts(lead) == [
        {"fact": "Ada Lovelace is CTO at AE", "source": "lead.title"},
        {"fact": "AE is in Software", "source": "lead.industry"},
        {"fact": "Met at expo", "source": "lead.notes"},
    ]
    playbook = {"default": {"proof_points": ["P1"]}, "software": {"value_propositions": ["V1"]}}
    assert playbook_facts(playbook, "Software") == [
        {"fact": "V1", "source": "playbook:software"},
        {"fact": "P1", "source": "playbook"},
    ]
    facts = condense_by_rules(lead_facts(lead) + playbook_facts(playbook, "Software") * 2)
    assert [f["source"] for f in facts] == [
        "lead.title",
        "lead.industry",
        "playbook:software",
        "playbook",
        "lead.notes",
    ]


def test_the_pipeline_uses_the_company_page_when_the_campaign_enables_it(
    seed: Seed, settings: Settings, site: str
) -> None:
    seed.campaign(research_web=True)
    values = settings.model_dump()
    values.update(research_fetch_allow_private=True)
    runtime = PipelineRuntime.from_settings(make_settings(**values), now=lambda: NOW)
    cl = seed.enrol(seed.lead(website=site + "/"))
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    assert site + "/" in {f["source"] for f in seed.enrolment(cl).research}


def test_a_refused_page_is_a_warning_not_a_failure(seed: Seed, runtime: PipelineRuntime, site: str) -> None:
    seed.campaign(research_web=True)
    cl = seed.enrol(seed.lead(website=site + "/"))  # loopback, and private fetches are off
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    warnings = [e.message for e in seed.events(cl) if e.level == "warning"]
    assert any("company page not used" in w and "private address" in w for w in warnings)
