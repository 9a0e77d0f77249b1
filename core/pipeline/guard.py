"""The guard: plain-code checks of a draft before anyone sees or receives it.

Invisible and control characters are stripped; then length and SMS segments, links against the
tenant's allow-list, phone numbers and email addresses against the lead's and the sender's,
fragments of the system prompt (and its canary), and the opt-out or unsubscribe lines. Links,
addresses and numbers are found however they are disguised (core.pipeline.scan): a link is read
as a browser reads it, and refused outright when it hides its host behind userinfo, mixes scripts
or points at a bare IP address.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers

from core.compliance.segments import segments_for, straighten_for_gsm
from core.llm.prompts import EMAIL_UNSUBSCRIBE_LINE, SMS_OPT_OUT_LINE
from core.pipeline.scan import Link, emails_in, find_links, normalise_host, phones_in

MAX_EMAIL_BODY_CHARS = 5000
MAX_SUBJECT_CHARS = 150
PROMPT_FRAGMENT_WORDS = 6

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
# Letters and symbols that print as nothing (Hangul fillers, the blank Braille pattern, the
# combining grapheme joiner): as good as zero-width for hiding a link.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")


def strip_invisible(text: str) -> tuple[str, int]:
    """Format characters (zero-width, bidi, tags), blank glyphs and controls but newline removed."""
    if _PLAIN.fullmatch(text):
        return text, 0  # printable ASCII: nothing to strip (the common case, checked in C)
    kept = []
    for ch in text:
        if ch == "\t":
            kept.append(" ")
        elif ch == "\n" or (
            unicodedata.category(ch) not in ("Cf", "Cc", "Cs", "Co", "Cn") and ch not in _BLANK_GLYPHS
        ):
            kept.append(ch)
    cleaned = "".join(kept)
    return cleaned, len(text) - len(cleaned) + text.count("\t")


def _allow_list_entry(entry: str) -> str | None:
    """An allow-list entry ("https://cal.com/acme", "www.acme.example") as the host it allows."""
    authority = re.sub(r"^[a-z][a-z0-9+.-]*://", "", entry.strip(), flags=re.IGNORECASE)
    authority = re.split(r"[/\\?#]", authority, maxsplit=1)[0].rsplit("@", 1)[-1]
    host, _ = normalise_host(authority.split(":")[0])
    return host.removeprefix("www.") if host else None


@lru_cache(maxsize=256)
def _allowed_hosts(allow_list: tuple[str, ...]) -> frozenset[str]:
    return frozenset(h for h in map(_allow_list_entry, allow_list) if h)


def _host_allowed(host: str, allow_list: tuple[str, ...]) -> bool:
    """Hosts are compared in IDNA form: a look-alike letter makes a different host."""
    allowed = _allowed_hosts(tuple(allow_list))
    return any(host == domain or host.endswith("." + domain) for domain in allowed)


def links_in(text: str) -> list[str]:
    """Hosts (as written) of every link: URLs with a scheme, //host, www. names, IP addresses
    and names with a top-level domain."""
    return [link.written_host for link in find_links(text) if link.written_host]


def _link_problem(link: Link, allow_list: tuple[str, ...]) -> str | None:
    if link.refusal:
        return f"the link {link.written} is refused: {link.refusal}"
    if link.host is not None and _host_allowed(link.host, allow_list):
        return None
    problem = f"the link to {link.written_host} is not on the tenant's allow-list"
    if link.looks_like:
        problem += f" (it imitates {link.looks_like} with look-alike letters)"
    return problem


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
    # In an SMS every name with a dot and a plausible top-level domain counts as a link, as a
    # phone would make it one: the cost is a false positive on prose such as "Node.js", which
    # fails the draft and gets it rewritten. In an email only names a mail program links do.
    phone_text = full_text
    for link in find_links(full_text, every_domain=rules.channel == "sms"):
        problem = _link_problem(link, rules.link_allow_list)
        if problem:
            problems.append(problem)
        else:  # an allowed link's path is the tenant's own: an id in it is not a number to call
            start, end = link.span
            phone_text = phone_text[:start] + " " * (end - start) + phone_text[end:]
    for address in emails_in(full_text):
        if unicodedata.normalize("NFKC", address).lower() not in rules.allowed_emails:
            problems.append(f"the email address {address} is neither the lead's nor the sender's")
    postal = tuple(line.strip() for line in (rules.postal_address or "").splitlines() if line.strip())
    for number in phones_in(phone_text, ignore=postal):
        if _normalise_phone(number.digits, rules.default_country) not in rules.allowed_phones:
            problems.append(f"the phone number {number.written} is neither the lead's nor the sender's")
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
