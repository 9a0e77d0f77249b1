"""Research: facts about a lead and its company, each with its source.

Sources: the lead's own fields ("lead.title"), the tenant's playbook ("playbook" or
"playbook:<industry>"), and, when the campaign enables it, the company web page (its URL),
fetched with httpx over http/https only, a 5 s timeout, a 1 MB cap, and private or loopback
addresses refused unless `research_fetch_allow_private` is set.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
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
_FETCH_HEADERS = {
    "User-Agent": "Leadflow research (+https://leadflow.invalid)",
    "Accept": "text/html,text/plain",
}


class ResearchFetchError(Exception):
    """The company page could not be fetched or read; the message says why."""


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


def vetted_address(host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` once: refused when any answer is a private address, else the first answer."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ResearchFetchError(f"cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise ResearchFetchError(f"cannot resolve {host}")
    for text in addresses if not allow_private else ():
        address = ipaddress.ip_address(text.split("%")[0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            raise ResearchFetchError(f"{host} resolves to a private address ({address}): not fetched")
    return addresses[0]


class _VettedNetwork(httpcore.SyncBackend):
    """Connects to the very address it vetted: the name is resolved once, here.

    Checking a name and then letting the HTTP client resolve it again would leave a gap: a DNS
    answer that changes in between (rebinding) could send the fetch to a private host. TLS
    still verifies the certificate against the name, which httpcore passes as server_hostname.
    """

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = vetted_address(host, port, self.allow_private)
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


class _VettedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that connects through `_VettedNetwork`."""

    def __init__(self, allow_private: bool) -> None:
        context = _tls_context()
        super().__init__(verify=context)
        # The pool httpx built, replaced by the same pool on our network backend (httpx has no
        # public hook for it; the versions are pinned and the tests fetch through it).
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_VettedNetwork(allow_private)
        )


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs more than a small page's whole fetch."""
    return ssl.create_default_context(cafile=certifi.where())


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise ResearchFetchError(f"'{url}' is not a valid address") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ResearchFetchError(f"only http and https pages are fetched, not '{url}'")


def fetch_page_text(url: str, settings: Settings) -> tuple[str, str]:
    """(final URL, page text): redirects followed by hand so each hop is checked.

    Every connection goes to an address vetted when it is made (`_VettedNetwork`), so neither a
    redirect nor a second DNS answer reaches a private host.
    """
    if "://" not in url and not re.match(
        r"^(javascript|data|file|mailto|about|vbscript):", url, re.IGNORECASE
    ):
        url = f"https://{url}"  # a bare domain, as lead imports store websites
    limit = settings.research_fetch_max_bytes
    with httpx.Client(
        timeout=settings.research_fetch_timeout_seconds,
        follow_redirects=False,
        headers=_FETCH_HEADERS,
        transport=_VettedTransport(settings.research_fetch_allow_private),
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
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) >= limit:
                            del body[limit:]
                            break  # the cap: the first megabyte is all that is read
                    return url, _text_of(bytes(body), response.encoding or "utf-8")
            except httpx.HTTPError as exc:
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
    final_url, text = fetch_page_text(website, settings)
    return [_fact(line, final_url) for line in text.splitlines()[:2] if line.strip()]


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
