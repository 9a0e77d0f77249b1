"""Research: facts about a lead and its company, each with its source.

Sources: the lead's own fields ("lead.title"), the tenant's playbook ("playbook" or
"playbook:<industry>"), and, when the campaign enables it, the company web page (its URL).
A lead's website is hostile input, so the page is fetched over http/https only, from globally
routable addresses only (every redirect vetted the same way), with a per-read timeout, a deadline
on the whole fetch, and a cap on the decoded bytes; only gzip and deflate are accepted, and they are
inflated as they arrive, never past the cap.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore
import httpx
from bs4 import BeautifulSoup

from core.config import Settings

Fact = dict[str, str]
MAX_FACT_CHARS = 240
MAX_FACTS = 6
MAX_REDIRECTS = 3
# Only encodings decoded here, a chunk at a time with a cap on the output, are asked for: httpx
# would also ask for (and inflate whole) brotli and zstd when their packages are installed.
_FETCH_HEADERS = {
    "User-Agent": "Leadflow research (+https://leadflow.invalid)",
    "Accept": "text/html,text/plain",
    "Accept-Encoding": "gzip, deflate, identity",
}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ResearchFetchError(Exception):
    """The company page could not be fetched or read; the message says why."""


@dataclass(frozen=True)
class FetchedPage:
    url: str  # after redirects
    text: str  # the description and first paragraphs
    size: int  # decoded bytes read
    truncated: bool  # the page went on past the size cap, which cut it


def _fact(text: str, source: str) -> Fact:
    cleaned = " ".join(str(text).split())
    if len(cleaned) > MAX_FACT_CHARS:
        cleaned = cleaned[: MAX_FACT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return {"fact": cleaned, "source": source}


def lead_facts(lead: dict[str, Any]) -> list[Fact]:
    facts: list[Fact] = []
    name = " ".join(p for p in (lead.get("first_name"), lead.get("last_name")) if p)
    if lead.get("title") and lead.get("company"):
        facts.append(_fact(f"{name or 'The lead'} is {lead['title']} at {lead['company']}", "lead.title"))
    elif lead.get("company"):
        facts.append(_fact(f"{name or 'The lead'} works at {lead['company']}", "lead.company"))
    if lead.get("industry"):
        facts.append(
            _fact(f"{lead.get('company') or 'The company'} is in {lead['industry']}", "lead.industry")
        )
    if lead.get("city"):
        facts.append(_fact(f"Based in {lead['city']}", "lead.city"))
    if lead.get("notes"):
        facts.append(_fact(str(lead["notes"]), "lead.notes"))
    return facts


def playbook_facts(playbook: dict[str, Any], industry: str | None) -> list[Fact]:
    """Value propositions and proof points: the industry's section first, then the default."""
    facts: list[Fact] = []
    sections: list[tuple[str, Any]] = []
    if industry:
        for key, section in playbook.items():
            if key.lower() == industry.lower() and key != "default":
                sections.append((f"playbook:{key}", section))
    sections.append(("playbook", playbook.get("default")))
    for source, section in sections:
        if not isinstance(section, dict):
            continue
        for key in ("proof_points", "value_propositions"):
            for item in section.get(key) or []:
                if isinstance(item, str) and item.strip():
                    facts.append(_fact(item, source))
    return facts


# Not reachable from the internet but not (all) flagged by `ipaddress` in Python 3.11.
_NOT_PUBLIC_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated
        "::/96",  # IPv4-compatible IPv6, deprecated
        "fec0::/10",  # site-local IPv6, deprecated but still routed inside some networks
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/32",  # Teredo tunnels
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _not_public(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 host: the IPv4 one decides.
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return f"it maps to {embedded}, {why}" if (why := _not_public(embedded)) else None
        if address.sixtofour is not None and (why := _not_public(address.sixtofour)):
            return f"it tunnels to {address.sixtofour}, {why}"
    if any(address.version == net.version and address in net for net in _NOT_PUBLIC_NETWORKS):
        return "not globally routable"
    if not address.is_global or address.is_multicast or address.is_reserved:
        return "not globally routable"
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why the fetch may not connect to `address`, or None when it is a public internet address.

    The one check each connection makes (tests replace it to let their loopback site through);
    an address embedded in another is judged by `_not_public` itself, never by a replacement.
    """
    return _not_public(address)


class _Deadline:
    """The wall-clock time one fetch may take, DNS, connections, TLS and redirects included."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    @property
    def passed(self) -> bool:
        # A timer clamped to the deadline may wake a hair before it: that is the deadline too.
        return time.monotonic() >= self.ends - 0.05

    def clamp(self, timeout: float | None, timeout_error: type[Exception]) -> float:
        """`timeout` shortened to the time left; `timeout_error` once there is none."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise timeout_error(f"the fetch's {self.seconds:g} s deadline passed")
        return left if timeout is None else min(timeout, left)


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses of `host`, given up on after `timeout` seconds.

    getaddrinfo cannot be interrupted: it runs in a thread that is left to end on its own (the
    system resolver's own timeouts end it) while the fetch fails now.
    """
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    answer: list[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # a resolver error, or a name the IDNA codec refuses
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"no answer for {host} within {timeout:g} s")
    if isinstance(answer[0], Exception):
        raise ResearchFetchError(f"cannot resolve {host}: {answer[0]}")
    return [str(info[4][0]) for info in answer[0]]


def vetted_address(host: str, port: int, allow_private: bool, timeout: float) -> str:
    """Resolve `host` once: refused when any answer is not a public address, else the first one."""
    addresses = _resolve(host, port, timeout)
    if not addresses:
        raise ResearchFetchError(f"cannot resolve {host}")
    for text in addresses if not allow_private else ():
        address = ipaddress.ip_address(text.split("%")[0])
        if why := address_refusal(address):
            raise ResearchFetchError(f"{host} resolves to a private address ({address}: {why}): not fetched")
    return addresses[0]


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write (and TLS handshake) ends by the fetch's deadline.

    A per-read timeout alone restarts with each byte: a server dripping one byte a second would
    hold the fetch for as long as it likes.
    """

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _VettedNetwork(httpcore.SyncBackend):
    """Connects to the very address it vetted: the name is resolved once, here.

    Checking a name and then letting the HTTP client resolve it again would leave a gap: a DNS
    answer that changes in between (rebinding) could send the fetch to a private host. TLS
    still verifies the certificate against the name, which httpcore passes as server_hostname.
    Every redirect's connection comes through here too, so it is vetted the same way.
    """

    def __init__(self, allow_private: bool, deadline: _Deadline) -> None:
        self.allow_private, self.deadline = allow_private, deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        resolve_timeout = self.deadline.clamp(timeout, httpcore.ConnectTimeout)
        address = vetted_address(host, port, self.allow_private, resolve_timeout)
        timeout = self.deadline.clamp(timeout, httpcore.ConnectTimeout)
        stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self.deadline)


class _VettedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that connects through `_VettedNetwork`."""

    def __init__(self, allow_private: bool, deadline: _Deadline) -> None:
        context = _tls_context()
        super().__init__(verify=context)
        # The pool httpx built, replaced by the same pool on our network backend (httpx has no
        # public hook for it; the versions are pinned and the tests fetch through it).
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_VettedNetwork(allow_private, deadline)
        )


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs more than a small page's whole fetch."""
    return ssl.create_default_context(cafile=certifi.where())


class _Inflater:
    """gzip or deflate decoded as it arrives, never more than the room left under the cap."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._wbits = zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(self._wbits)
        self._started = False

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            out = self._zlib.decompress(data, room)
        except zlib.error:
            if self.encoding != "deflate" or self._started:
                raise
            # "deflate" sent without its zlib header, as some servers do: the same data, raw.
            self._wbits = -zlib.MAX_WBITS
            self._zlib = zlib.decompressobj(self._wbits)
            out = self._zlib.decompress(data, room)
        self._started = True
        # A gzip body may hold several members one after the other.
        while self._zlib.eof and self._zlib.unused_data and len(out) < room:
            rest = self._zlib.unused_data
            self._zlib = zlib.decompressobj(self._wbits)
            out += self._zlib.decompress(rest, room - len(out))
        return out


class _Identity:
    def decode(self, data: bytes, room: int) -> bytes:
        return data[:room]


def _decoder_for(content_encoding: str, url: str) -> _Inflater | _Identity:
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflater(codings[0])
    raise ResearchFetchError(
        f"{url} sent the page encoded as '{content_encoding}', which is not read (only gzip and deflate are)"
    )


def _capped_body(response: httpx.Response, url: str, limit: int) -> tuple[bytes, bool]:
    """(the decoded body up to `limit` bytes, whether the page went on past it)."""
    decoder = _decoder_for(response.headers.get("content-encoding", ""), url)
    body = bytearray()
    received = 0
    for chunk in response.iter_raw():
        received += len(chunk)
        try:
            body += decoder.decode(chunk, limit - len(body))
        except zlib.error:
            raise ResearchFetchError(f"{url}: the compressed page is corrupt") from None
        # The decoded size is capped, and so is what is read to produce it (a stream of
        # compressed data that inflates to nothing).
        if len(body) >= limit or received >= limit:
            return bytes(body), True
    return bytes(body), False


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise ResearchFetchError(f"'{url}' is not a valid address") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ResearchFetchError(f"only http and https pages are fetched, not '{url}'")


def fetch_page(url: str, settings: Settings) -> FetchedPage:
    """The company page at `url`: redirects followed by hand so each hop is checked.

    Every connection goes to an address vetted when it is made (`_VettedNetwork`), so neither a
    redirect nor a second DNS answer reaches a private host; the whole fetch ends by
    `research_fetch_deadline_seconds`, however slowly the server answers.
    """
    if "://" not in url and not re.match(
        r"^(javascript|data|file|mailto|about|vbscript):", url, re.IGNORECASE
    ):
        url = f"https://{url}"  # a bare domain, as lead imports store websites
    limit = settings.research_fetch_max_bytes
    deadline = _Deadline(settings.research_fetch_deadline_seconds)
    with httpx.Client(
        timeout=settings.research_fetch_timeout_seconds,
        follow_redirects=False,
        headers=_FETCH_HEADERS,
        transport=_VettedTransport(settings.research_fetch_allow_private, deadline),
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(url)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise ResearchFetchError(f"{url} answered {response.status_code}")
                    kind = response.headers.get("content-type", "")
                    if kind and not kind.startswith(("text/html", "text/plain", "application/xhtml")):
                        raise ResearchFetchError(f"{url} is not a web page ({kind})")
                    body, truncated = _capped_body(response, url, limit)
                    text = _text_of(body, response.encoding or "utf-8")
                    return FetchedPage(url, text, len(body), truncated)
            except httpx.HTTPError as exc:
                if deadline.passed:
                    raise ResearchFetchError(
                        f"gave up on {url}: no page within {deadline.seconds:g} s"
                    ) from None
                raise ResearchFetchError(f"cannot fetch {url}: {type(exc).__name__}") from None
    raise ResearchFetchError(f"{url}: too many redirects")


def _text_of(body: bytes, encoding: str) -> str:
    soup = BeautifulSoup(body.decode(encoding, errors="replace"), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    parts = []
    meta = soup.find("meta", attrs={"name": "description"})
    if meta is not None and meta.get("content"):
        parts.append(str(meta["content"]))
    for paragraph in soup.find_all(["h1", "p"]):
        text = paragraph.get_text(" ", strip=True)
        if len(text) >= 40:
            parts.append(text)
        if len(parts) >= 3:
            break
    if not parts and soup.title and soup.title.string:
        parts.append(str(soup.title.string))
    return "\n".join(parts)


def web_facts(website: str, settings: Settings) -> list[Fact]:
    page = fetch_page(website, settings)
    return [_fact(line, page.url) for line in page.text.splitlines()[:2] if line.strip()]


def condense_by_rules(facts: list[Fact], max_facts: int = MAX_FACTS) -> list[Fact]:
    """Duplicates removed, at most `max_facts`, web and playbook facts kept ahead of the rest."""
    seen: set[str] = set()
    unique = []
    for fact in facts:
        key = fact["fact"].lower()
        if key not in seen:
            seen.add(key)
            unique.append(fact)
    lead_own = [f for f in unique if f["source"].startswith("lead.")]
    outside = [f for f in unique if not f["source"].startswith("lead.")]
    # The lead's role and company first (they name the person), then what we can say to them.
    return (lead_own[:2] + outside + lead_own[2:])[:max_facts]
