"""Research: facts about a lead and its company, each with its source.

Sources: the lead's own fields ("lead.title"), the tenant's playbook ("playbook" or
"playbook:<industry>"), and, when the campaign enables it, the company web page (its URL).
A lead's website is hostile input, so the page is fetched over http/https only, from globally
routable addresses only (every redirect vetted the same way), with a per-read timeout, a deadline
on the whole fetch, and a cap on the decoded bytes; only gzip and deflate are accepted, and they are
inflated as they arrive, never past the cap.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup

from core.config import Settings
from core.net_guard import (  # noqa: F401 (IPAddress, address_refusal: also read from here)
    Deadline,
    IPAddress,
    UnsafeAddress,
    VettedTransport,
    address_refusal,
)

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

    Every connection goes to an address vetted when it is made (core.net_guard), so neither a
    redirect nor a second DNS answer reaches a private host; the whole fetch ends by
    `research_fetch_deadline_seconds`, however slowly the server answers.
    """
    if "://" not in url and not re.match(
        r"^(javascript|data|file|mailto|about|vbscript):", url, re.IGNORECASE
    ):
        url = f"https://{url}"  # a bare domain, as lead imports store websites
    limit = settings.research_fetch_max_bytes
    deadline = Deadline(settings.research_fetch_deadline_seconds)
    with httpx.Client(
        timeout=settings.research_fetch_timeout_seconds,
        follow_redirects=False,
        headers=_FETCH_HEADERS,
        transport=VettedTransport(settings.research_fetch_allow_private, deadline),
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
            except UnsafeAddress as exc:
                raise ResearchFetchError(str(exc)) from None
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
