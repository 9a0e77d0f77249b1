"""Research: facts with sources from the lead, the playbook and the company page, fetched safely."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core import net_guard
from core.config import Settings
from core.pipeline import nodes
from core.pipeline.research import (
    ResearchFetchError,
    address_refusal,
    condense_by_rules,
    fetch_page,
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


BOMB_SIZE = 50_000_000  # what the bomb inflates to; a few dozen kilobytes on the wire


@cache
def bomb(encoding: str) -> bytes:
    zeros = b"\0" * BOMB_SIZE
    if encoding == "gzip":
        return gzip.compress(zeros, compresslevel=9)
    if encoding == "deflate":
        return zlib.compress(zeros, 9)
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # "deflate" as some servers send it
    return raw.compress(zeros) + raw.flush()


class Site(ThreadingHTTPServer):
    daemon_threads = True
    bytes_sent = 0


class _Handler(BaseHTTPRequestHandler):
    server: Site
    requests = 0  # GET requests answered since the `site` fixture started
    accept_encoding: list[str | None] = []  # the Accept-Encoding of each request

    def log_message(self, *args: Any) -> None:
        return

    def _drip(self, data: bytes) -> None:
        """One byte every 0.2 s: each read gets data long before the per-read timeout."""
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _encoded(self, encoding: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        type(self).requests += 1
        type(self).accept_encoding.append(self.headers.get("Accept-Encoding"))
        if self.path == "/drip-body":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self._drip(b"<p>" + b"x" * 300)
            return
        if self.path == "/drip-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self._drip(b"X-Slow: " + b"x" * 300)
            return
        if self.path.startswith("/bomb-"):  # sent compressed whatever the request accepted
            encoding = self.path.removeprefix("/bomb-")
            self._encoded("deflate" if encoding == "raw-deflate" else encoding, bomb(encoding))
            return
        if self.path == "/gzipped":
            self._encoded("gzip", gzip.compress(HOME))
            return
        if self.path.startswith("/encoded/"):  # an encoding this client never asked for
            self._encoded(self.path.removeprefix("/encoded/").replace("+", ", "), b"\x28\xb5\x2f\xfd" * 64)
            return
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
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
    _Handler.accept_encoding = []
    server = Site(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def allowing(**overrides: Any) -> Settings:
    return make_settings("sqlite://", research_fetch_allow_private=True, **overrides)


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with the real address check, patched to let 127.0.0.1 (the test site) through."""
    real = net_guard.address_refusal
    site_address = ipaddress.ip_address("127.0.0.1")

    def refusal(address: net_guard.IPAddress) -> str | None:
        return None if address == site_address else real(address)

    monkeypatch.setattr(net_guard, "address_refusal", refusal)
    return make_settings("sqlite://")


class Resolver:
    """getaddrinfo with one name answered by a fixed address; every other name resolved for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, address: str) -> None:
        self.name, self.address, self.real = name, address, socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sockaddr = (self.address, port, 0, 0) if family == socket.AF_INET6 else (self.address, port)
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]


def test_page_text_has_description_and_paragraphs_but_no_scripts(site: str) -> None:
    page = fetch_page(site + "/", allowing())
    assert page.url == site + "/"
    assert "calculating machines for insurers" in page.text and "100th engine" in page.text
    assert "do not read me" not in page.text
    assert (page.size, page.truncated) == (len(HOME), False)


def test_redirects_are_followed_and_facts_carry_the_final_url(site: str) -> None:
    facts = web_facts(site + "/moved", allowing())
    assert facts[0] == {
        "fact": "Analytical Engines builds calculating machines for insurers.",
        "source": site + "/",
    }


def test_only_the_first_megabyte_is_read(site: str) -> None:
    uncapped = fetch_page(site + "/big", allowing(research_fetch_max_bytes=10_000_000))
    assert "AFTER THE CAP" in uncapped.text  # the marker is read when the cap does not cut it off
    assert (uncapped.size, uncapped.truncated) == (len(BIG), False)
    page = fetch_page(site + "/big", allowing(research_fetch_max_bytes=100_000))
    assert "filler text" in page.text and "AFTER THE CAP" not in page.text
    assert (page.size, page.truncated) == (100_000, True)


def test_a_compressed_page_is_read(site: str) -> None:
    page = fetch_page(site + "/gzipped", allowing())
    assert "100th engine" in page.text and (page.size, page.truncated) == (len(HOME), False)


def test_the_fetch_asks_only_for_encodings_it_bounds(site: str) -> None:
    fetch_page(site + "/", allowing())
    (asked,) = _Handler.accept_encoding
    assert asked is not None
    codings = {part.split(";")[0].strip().lower() for part in asked.split(",")}
    assert codings <= {"gzip", "deflate", "identity"} and "gzip" in codings


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_a_compression_bomb_is_cut_at_the_cap_without_inflating_it(site: str, encoding: str) -> None:
    bomb(encoding)  # compressed before measuring: the server's work is not the fetch's
    cap = 1_000_000
    tracemalloc.start()
    try:
        page = fetch_page(site + f"/bomb-{encoding}", allowing(research_fetch_max_bytes=cap))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (page.size, page.truncated) == (cap, True)
    # Inflating the whole body first would hold the 50 MB it expands to; the cap keeps a
    # handful of copies of one megabyte (the body, its text, the parser's tree).
    assert peak < BOMB_SIZE // 4, f"peak {peak:,} bytes"


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip+br", "gzip+gzip"])
def test_encodings_it_cannot_bound_are_refused(site: str, encoding: str) -> None:
    with pytest.raises(ResearchFetchError, match="not read"):
        fetch_page(site + f"/encoded/{encoding}", allowing())


@pytest.mark.parametrize("path", ["/drip-body", "/drip-headers"])
def test_a_slow_drip_is_stopped_by_the_deadline(site: str, path: str) -> None:
    # Every read gets a byte within 0.2 s, far inside the 5 s per-read timeout: only the
    # deadline on the whole fetch stops it.
    settings = allowing(research_fetch_timeout_seconds=5, research_fetch_deadline_seconds=1)
    with pytest.raises(ResearchFetchError, match="no page within 1 s"):
        fetch_page(site + path, settings)


def test_a_slow_name_lookup_counts_against_the_deadline(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    released = threading.Event()
    real = socket.getaddrinfo

    def stuck(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "stuck.example":
            released.wait(30)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    settings = allowing(research_fetch_timeout_seconds=5, research_fetch_deadline_seconds=1)
    try:
        with pytest.raises(ResearchFetchError, match="no page within 1 s"):
            fetch_page("http://stuck.example/", settings)
    finally:
        released.set()


NOT_PUBLIC = [
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "192.0.0.8",  # IETF protocol assignments
    "192.0.0.170",
    "198.18.0.1",  # benchmarking
    "192.0.2.1",  # documentation
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",  # link-local
    "fec0::1",  # site-local
    "fc00::1",  # unique local
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:127.0.0.1",
    "::10.0.0.1",  # IPv4-compatible
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_every_address_that_is_not_globally_routable_is_refused(
    site: str, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    Resolver(monkeypatch, "target.example", address)
    with pytest.raises(ResearchFetchError, match="target.example resolves to a private address"):
        fetch_page(f"http://target.example:{site.rsplit(':', 1)[1]}/", make_settings("sqlite://"))
    assert address_refusal(ipaddress.ip_address(address)) is not None
    assert _Handler.requests == 0


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "2606:4700::1111",
        "::ffff:93.184.215.14",
        "64:ff9b::5db8:d70e",  # NAT64 of a public address, as DNS64 answers on IPv6-only networks
        "2002:5db8:d70e::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass_the_check(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_only_the_test_site_gets_past_the_patched_check(site: str, loopback_only: Settings) -> None:
    assert "100th engine" in fetch_page(site + "/moved", loopback_only).text
    with pytest.raises(ResearchFetchError, match="private address"):
        fetch_page(site.replace("127.0.0.1", "[::ffff:127.0.0.1]") + "/", loopback_only)


@pytest.mark.parametrize(
    "target",
    ["http://[::ffff:127.0.0.1]:{port}/", "http://target.example:{port}/", "http://10.0.0.1:{port}/"],
)
def test_a_redirect_gets_the_same_vetting(
    site: str, loopback_only: Settings, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    Resolver(monkeypatch, "target.example", "100.64.0.1")
    location = target.format(port=site.rsplit(":", 1)[1])
    with pytest.raises(ResearchFetchError, match="resolves to a private address"):
        fetch_page(f"{site}/to/{location}", loopback_only)
    assert _Handler.requests == 1  # the redirect itself, and nothing after it


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
        fetch_page(site + path, settings)


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
        fetch_page(f"http://rebind.example:{port}/", settings)
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
        fetch_page(f"http://inside.example:{port}/", make_settings("sqlite://"))
    assert _Handler.requests == 0
    # The same name with private addresses allowed (a test setting) is fetched from that address.
    page = fetch_page(f"http://inside.example:{port}/", allowing())
    assert "100th engine" in page.text and _Handler.requests == 1


def test_a_name_the_resolver_rejects_is_a_refusal() -> None:
    # A label over 63 characters: the IDNA codec raises UnicodeError, not a resolver error.
    with pytest.raises(ResearchFetchError, match="cannot resolve"):
        fetch_page(f"http://{'a' * 64}.example/", make_settings("sqlite://"))


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(ResearchFetchError, match="only http and https"):
        fetch_page(url, allowing())


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
    runtime = PipelineRuntime.from_settings(make_settings(**values), seed.db, now=lambda: NOW)
    cl = seed.enrol(seed.lead(website=site + "/"))
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    assert site + "/" in {f["source"] for f in seed.enrolment(cl).research}


def test_a_refused_page_is_a_warning_not_a_failure(seed: Seed, runtime: PipelineRuntime, site: str) -> None:
    seed.campaign(research_web=True)
    cl = seed.enrol(seed.lead(website=site + "/"))  # loopback, and private fetches are off
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    warnings = [e.message for e in seed.events(cl) if e.level == "warning"]
    assert any("company page not used" in w and "private address" in w for w in warnings)


@pytest.mark.parametrize(
    "error", [RuntimeError("parser bug"), MemoryError(), UnicodeDecodeError("utf-8", b"", 0, 1, "x")]
)
def test_a_fetch_that_fails_in_any_way_is_a_missing_fact_not_a_crashed_run(
    seed: Seed, runtime: PipelineRuntime, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def failing(website: str, settings: Settings) -> list[dict[str, str]]:
        raise error

    monkeypatch.setattr(nodes, "web_facts", failing)
    seed.campaign(research_web=True)
    cl = seed.enrol(seed.lead(website="https://analytical.example/"))
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    enrolment = seed.enrolment(cl)
    assert enrolment.draft_body and enrolment.research  # composed from the lead's own facts
    assert not any(f["source"].startswith("http") for f in enrolment.research)
    warnings = [e.message for e in seed.events(cl) if e.level == "warning"]
    assert any("company page not used" in w and type(error).__name__ in w for w in warnings)
