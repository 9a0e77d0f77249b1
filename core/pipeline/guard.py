"""The guard: plain-code checks of a draft before anyone sees or receives it.

Invisible and control characters are stripped; then length and SMS segments, links against the
tenant's allow-list, phone numbers and email addresses against the lead's and the sender's,
fragments of the system prompt (and its canary), and the opt-out or unsubscribe lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers

from core.compliance.segments import segments_for, straighten_for_gsm
from core.pipeline.prompts import EMAIL_UNSUBSCRIBE_LINE, SMS_OPT_OUT_LINE

MAX_EMAIL_BODY_CHARS = 5000
MAX_SUBJECT_CHARS = 150
PROMPT_FRAGMENT_WORDS = 6

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_SCHEME_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"'()\[\]]+", re.IGNORECASE)
# Bare domains ("evil.io/x") with a common top-level domain; a full TLD list would flag
# ordinary words such as "Node.js".
_TLDS = (
    "com|net|org|io|co|ai|app|dev|info|biz|us|uk|de|fr|nl|eu|ly|me|xyz|site|online|tech|"
    "gg|to|cc|tv|ru|cn|in|au|ca|es|it|ch|se|no|be|at|pl|br|jp|link|click|top|shop|store|"
    "live|cloud|page|tk|ml|ga|cf|gq|sh|ws|su|kz|ua|ir|vn|id|tw|hk|sg|nz|za|mx|ar|cl|example"
)
_BARE_DOMAIN = re.compile(
    rf"\b((?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS}))\b(?:/[^\s]*)?", re.IGNORECASE
)
# Any name.tld followed by a path is a link, whatever its top-level domain.
_DOMAIN_WITH_PATH = re.compile(r"\b((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})/", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w/])\+?\d[\d\s().-]{5,}\d(?![\w/])")
_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class GuardRules:
    """What one draft is checked against: the campaign, tenant and lead it is for."""

    channel: str
    step: int
    max_sms_segments: int
    link_allow_list: tuple[str, ...]
    allowed_phones: frozenset[str]
    allowed_emails: frozenset[str]
    canary: str
    protected_text: str
    default_country: str = "US"
    postal_address: str | None = None


@dataclass
class GuardResult:
    passed: bool
    body: str
    subject: str | None
    problems: list[str] = field(default_factory=list)
    segments: int = 0
    encoding: str = ""
    removed_characters: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "problems": self.problems,
            "segments": self.segments,
            "encoding": self.encoding,
            "removed_characters": self.removed_characters,
        }


_PLAIN = re.compile(r"[\x20-\x7e\n]*")


def strip_invisible(text: str) -> tuple[str, int]:
    """Format characters (zero-width, bidi, tags) and controls but newline removed."""
    if _PLAIN.fullmatch(text):
        return text, 0  # printable ASCII: nothing to strip (the common case, checked in C)
    kept = []
    for ch in text:
        if ch == "\t":
            kept.append(" ")
        elif ch == "\n" or unicodedata.category(ch) not in ("Cf", "Cc", "Cs", "Co", "Cn"):
            kept.append(ch)
    cleaned = "".join(kept)
    return cleaned, len(text) - len(cleaned) + text.count("\t")


def _host_allowed(host: str, allow_list: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allow_list:
        domain = re.sub(r"^[a-z]+://", "", entry.strip().lower()).split("/")[0].removeprefix("www.")
        if domain and (host == domain or host.endswith("." + domain) or host == "www." + domain):
            return True
    return False


def links_in(text: str) -> list[str]:
    """Hosts of every link: URLs with a scheme, www. addresses and bare domains."""
    without_emails = _EMAIL.sub(" ", text)
    hosts = []
    for match in _SCHEME_URL.finditer(without_emails):
        raw = match.group(0)
        rest = raw.split("://", 1)[1] if "://" in raw else raw
        hosts.append(re.split(r"[/?#:@]", rest, maxsplit=1)[0])
    bare_text = _SCHEME_URL.sub(" ", without_emails)
    for match in _BARE_DOMAIN.finditer(bare_text):
        hosts.append(match.group(1))
    for match in _DOMAIN_WITH_PATH.finditer(bare_text):
        if match.group(1) not in hosts:
            hosts.append(match.group(1))
    return [h.rstrip(".,;:!?") for h in hosts if h.rstrip(".,;:!?")]


@lru_cache(maxsize=4096)
def _normalise_phone(raw: str, country: str) -> str:
    try:
        number = phonenumbers.parse(raw, country)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return "+" + re.sub(r"\D", "", raw)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@lru_cache(maxsize=256)
def _prompt_fragments(protected: str) -> frozenset[tuple[str, ...]]:
    words = _words(protected)
    n = PROMPT_FRAGMENT_WORDS
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def check_draft(body: str, subject: str | None, rules: GuardRules) -> GuardResult:
    """The cleaned draft and every problem found; `passed` only when there is none."""
    body, removed = strip_invisible(body)
    if subject is not None:
        subject, removed_subject = strip_invisible(subject)
        subject = " ".join(subject.split())
        removed += removed_subject
    body = body.strip()
    problems: list[str] = []
    result = GuardResult(
        passed=False, body=body, subject=subject, problems=problems, removed_characters=removed
    )
    if rules.channel == "sms":
        body = straighten_for_gsm(body)
        result.body = body
        count = segments_for(body)
        result.segments, result.encoding = count.segments, count.encoding
        if count.segments > rules.max_sms_segments:
            problems.append(
                f"the SMS needs {count.segments} segments ({count.encoding}, "
                f"{count.units} units); the campaign allows {rules.max_sms_segments}"
            )
        if rules.step == 0 and SMS_OPT_OUT_LINE.lower() not in body.lower():
            problems.append(f"the opt-out line '{SMS_OPT_OUT_LINE}' is missing")
    else:
        result.encoding = "email"
        if not subject:
            problems.append("the email has no subject")
        elif len(subject) > MAX_SUBJECT_CHARS:
            problems.append(f"the subject has {len(subject)} characters; at most {MAX_SUBJECT_CHARS}")
        if len(body) > MAX_EMAIL_BODY_CHARS:
            problems.append(f"the email has {len(body)} characters; at most {MAX_EMAIL_BODY_CHARS}")
        if EMAIL_UNSUBSCRIBE_LINE.lower() not in body.lower():
            problems.append("the unsubscribe line is missing")
        if rules.postal_address and rules.postal_address.strip().splitlines()[0] not in body:
            problems.append("the tenant's postal address is missing")
    if not body:
        problems.append("the message is empty")
    full_text = f"{subject or ''}\n{body}"
    for host in links_in(full_text):
        if not _host_allowed(host, rules.link_allow_list):
            problems.append(f"the link to {host} is not on the tenant's allow-list")
    for address in _EMAIL.findall(full_text):
        if address.lower() not in rules.allowed_emails:
            problems.append(f"the email address {address} is neither the lead's nor the sender's")
    for raw in _PHONE.findall(full_text):
        if sum(ch.isdigit() for ch in raw) < 7:
            continue
        if _normalise_phone(raw, rules.default_country) not in rules.allowed_phones:
            problems.append(f"the phone number {raw.strip()} is neither the lead's nor the sender's")
    if rules.canary and rules.canary.lower() in full_text.lower():
        problems.append("the draft repeats the system prompt's confidential marker")
    else:
        draft_words = _words(full_text)
        fragments = _prompt_fragments(rules.protected_text)
        n = PROMPT_FRAGMENT_WORDS
        if any(tuple(draft_words[i : i + n]) in fragments for i in range(len(draft_words) - n + 1)):
            problems.append("the draft repeats text of the system prompt")
    result.problems = list(dict.fromkeys(problems))
    result.passed = not result.problems
    return result
