"""What a reply means: the reply agent's classes, and the deterministic rules that decide them offline.

The rules read the text in a fixed order, so a reply matching several reads as the class that
matters most: an opt-out in any words first (the FCC counts a revocation "in any reasonable
manner"), then automatic answers, a pointer to someone else, "not now", "no", a question, a yes.
Each decision carries its evidence: the words that made it, and the date or person it names.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.inbound.dates import find_date


class ReplyClass(enum.StrEnum):
    interested = "interested"
    question = "question"
    not_now = "not_now"
    not_interested = "not_interested"
    referral = "referral"  # points to someone else by name (a proposed lead)
    wrong_person = "wrong_person"  # not the right person, no one named
    out_of_office = "out_of_office"
    unsubscribe = "unsubscribe"
    auto_reply = "auto_reply"
    unclassified = "unclassified"


# The classes a person answers; the others the agent settles on its own.
NEEDS_PERSON = frozenset({ReplyClass.interested, ReplyClass.question, ReplyClass.not_now,
                          ReplyClass.referral, ReplyClass.unclassified})
# The classes the agent writes a suggested answer for.
SUGGESTED = frozenset({ReplyClass.interested, ReplyClass.question})


@dataclass(frozen=True)
class Person:
    name: str | None = None
    email: str | None = None
    phone: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("name", self.name), ("email", self.email), ("phone", self.phone)) if v}


@dataclass(frozen=True)
class Classification:
    kind: ReplyClass
    evidence: list[str] = field(default_factory=list)
    day: date | None = None  # not_now: when to come back; out_of_office: the return date
    person: Person | None = None  # referral: who to talk to instead
    source: str = "rules"  # "rules" or "model"

    def detail(self) -> dict[str, Any]:
        """The JSON stored in `inbound_messages.classification_detail`."""
        out: dict[str, Any] = {"evidence": list(self.evidence), "source": self.source}
        if self.day is not None:
            out["date"] = self.day.isoformat()
        if self.person is not None and self.person.as_dict():
            out["person"] = self.person.as_dict()
        return out


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE)


# A message that is only an opt-out keyword (carriers' list, any case, with punctuation).
_KEYWORD_ONLY = re.compile(
    r"^\W*(?:please\W+)?(stop|stopall|unsubscribe|cancel|end|quit|revoke|optout|opt[\s-]?out)\W*$",
    re.IGNORECASE,
)
_CONTACT = r"(?:text|txt|messag|email|e-mail|mail|contact|call|spam|bother|sms)\w*"
_REVOCATION = _words(
    rf"stop\s+(?:\w+\s+){{0,2}}?{_CONTACT}",  # "stop texting me", "please stop sending these emails"
    rf"(?:do\s+not|don'?t|dont|never)\s+(?:\w+\s+){{0,2}}?{_CONTACT}\s+(?:me|us)",
    r"(?:take|remove|delete|drop)\s+(?:me|us|my\s+\w+|this\s+\w+)\s+(?:off|from)\s+(?:your|the|this)?\s*"
    r"(?:\w+\s+)?list",
    r"remove\s+me", r"unsubscribe(?:\s+me)?", r"opt\s*(?:me\s+)?out", r"leave\s+me\s+alone",
    r"no\s+more\s+(?:\w+\s+)?(?:texts|messages|emails|sms)", r"lose\s+my\s+number",
    r"(?:i|we)\s+(?:want|wish|would\s+like)\s+to\s+(?:opt\s*out|unsubscribe|stop\s+receiving)",
)
_OUT_OF_OFFICE = _words(
    r"out\s+of\s+(?:the\s+)?office", r"ooo", r"on\s+(?:annual\s+|parental\s+|maternity\s+|sick\s+)?"
    r"(?:leave|vacation|holiday|holidays|pto)", r"away\s+(?:from\s+\w+\s+)?until", r"i\s+am\s+away",
    r"i'?m\s+away", r"(?:will|i'll)\s+be\s+back", r"back\s+in\s+the\s+office", r"return(?:ing)?\s+on",
    r"limited\s+access\s+to\s+(?:my\s+)?e-?mail",
)
_AUTO_REPLY = _words(
    r"auto(?:matic|mated)?[\s-]?reply", r"auto[\s-]?response", r"autoresponder",
    r"this\s+(?:mailbox|inbox|address)\s+is\s+(?:not|no\s+longer)\s+monitored", r"do\s+not\s+reply",
    r"(?:we|i)\s+have\s+received\s+your\s+(?:e-?mail|message)", r"thank\s+you\s+for\s+(?:your\s+)?"
    r"(?:e-?mail|message)[,.!]?\s+(?:we|i)\s+will\s+(?:get\s+back|respond|reply)",
    r"ticket\s+(?:number|#)", r"this\s+is\s+an\s+automated",
)
_AUTO_SUBJECT = re.compile(r"^\s*(?:automatic\s+reply|auto(?:reply|[\s-]reply)?|out\s+of\s+office)\s*:",
                           re.IGNORECASE)
_WRONG_PERSON = _words(
    r"wrong\s+(?:person|number|contact|guy|address)", r"not\s+the\s+right\s+(?:person|contact)",
    r"(?:no\s+longer|doesn'?t|does\s+not)\s+work(?:s|ing)?\s+(?:here|at|for)", r"left\s+the\s+company",
    r"not\s+(?:my|in\s+my)\s+(?:area|department|role)", r"i'?m\s+not\s+(?:the\s+one|responsible)",
    r"(?:i\s+am|i'?m)\s+not\s+(?:in\s+charge|the\s+decision)",
)
_POINTER_BEFORE_NAME = re.compile(
    r"\b(?:(?:talk|speak|reach\s+out|write|get\s+in\s+touch)\s+(?:to|with)|contact|e-?mail|call|ask|"
    r"cc'?d?|forwarded\s+(?:this\s+)?to|try)\s+(?:(?:Mr|Ms|Mrs|Dr)\.?\s+)?",
    re.IGNORECASE,
)
_POINTER_AFTER_NAME = re.compile(r"\s+(?:handles|owns|runs|is\s+(?:responsible\s+for|in\s+charge\s+of|the\s+"
                                 r"(?:right|best)\s+(?:person|contact)))\b", re.IGNORECASE)
_NAME = r"[A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+){0,2}"
_NAME_FIRST = re.compile(_NAME)
_NAME_LAST = re.compile(rf"({_NAME})$")
_NOT_NAMES = frozenset({"I", "We", "Our", "She", "He", "They", "Please", "Thanks", "Thank", "Hi",
                        "Hello", "The", "You", "Your", "Sales", "Marketing", "Support", "Team", "Me",
                        "Us", "Him", "Her", "Them", "Someone", "Somebody", "Again", "Later", "Not"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
_NOT_NOW = _words(
    r"not\s+(?:right\s+)?now", r"not\s+at\s+(?:the|this)\s+moment", r"maybe\s+later",
    r"(?:check|circle)\s+back",
    r"(?:reach|follow)\s+(?:out\s+|up\s+)?(?:again\s+)?(?:in|after|next)", r"try\s+(?:me|us)\s+(?:again\s+)?"
    r"(?:in|after|next)", r"not\s+(?:a\s+)?good\s+time", r"bad\s+time", r"(?:too\s+)?busy\s+(?:right\s+)?now",
    r"next\s+(?:quarter|year|month)", r"(?:revisit|reconnect|talk)\s+(?:\w+\s+)?(?:in|after|next)",
    r"no\s+budget\s+(?:until|this)", r"later\s+(?:this|in\s+the)\s+year",
)
_NOT_INTERESTED = _words(
    r"not\s+interested", r"no\s+thanks?", r"no\s+thank\s+you", r"(?:we'?re|we\s+are|i'?m|i\s+am)\s+"
    r"(?:all\s+set|good|fine)", r"not\s+(?:a\s+)?(?:good\s+)?fit", r"(?:we|i)\s+already\s+(?:have|use|work)",
    r"(?:we'?ll|we\s+will|i'?ll|i\s+will)\s+pass", r"not\s+for\s+(?:us|me)", r"no\s+need",
    r"don'?t\s+need", r"do\s+not\s+need", r"not\s+looking",
)
_QUESTION_START = re.compile(
    r"^\s*(?:how|what|when|where|who|why|which|can|could|do|does|is|are|will|would|should|may)\b",
    re.IGNORECASE | re.MULTILINE,
)
_INTERESTED = _words(
    r"interested", r"sounds\s+(?:good|great|interesting)", r"let'?s\s+(?:talk|chat|meet|do\s+it|connect)",
    r"(?:set\s+up|schedule|book)\s+(?:a\s+)?(?:call|meeting|demo|time)", r"tell\s+me\s+more",
    r"send\s+(?:me\s+)?(?:more|details|info)", r"(?:i'?d|i\s+would|we'?d)\s+(?:love|like)\s+to",
    r"happy\s+to\s+(?:talk|chat|meet)", r"yes(?:\s+please)?", r"sure", r"count\s+(?:me|us)\s+in",
    r"works\s+for\s+(?:me|us)", r"i'?m\s+in", r"call\s+me",
)


def _quoted(match: re.Match[str] | None) -> list[str]:
    return [f"“{' '.join(match.group(0).split())}”"] if match else []


def _latest_text(body: str) -> str:
    """The reply's own words: the quoted earlier message and the signature are left out."""
    lines: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith(">") or re.match(r"^On .+ wrote:$", stripped) or stripped in ("--", "-- "):
            break
        if re.match(r"^-{2,}\s*Original Message\s*-{2,}$", stripped, re.IGNORECASE):
            break
        lines.append(line)
    return "\n".join(lines).strip() or body.strip()


def _name_near_pointer(text: str) -> str | None:
    """A capitalised name right after "talk to", "contact", ... or right before "handles", "owns"."""
    for pointer in _POINTER_BEFORE_NAME.finditer(text):
        match = _NAME_FIRST.match(text, pointer.end())
        if match and match.group(0).split()[0] not in _NOT_NAMES:
            return match.group(0)
    for pointer in _POINTER_AFTER_NAME.finditer(text):
        match = _NAME_LAST.search(text[: pointer.start()])
        if match and match.group(1).split()[0] not in _NOT_NAMES:
            return match.group(1)
    return None


def _person_named(text: str) -> Person | None:
    """The name, address or number of the person the reply points to, when it names one."""
    email = next(iter(_EMAIL.findall(text)), None)
    phone_match = _PHONE.search(text)
    phone = phone_match.group(0).strip() if phone_match else None
    name = _name_near_pointer(text)
    if not (name or email or phone):
        return None
    return Person(name=name, email=email.lower() if email else None, phone=phone)


def classify_by_rules(
    body: str, subject: str | None = None, *, today: date, day_first: bool = False
) -> Classification:
    """The offline decision: the class, its evidence, and the date or person it names."""
    text = _latest_text(body)
    flat = " ".join(text.split())
    if keyword := _KEYWORD_ONLY.match(flat):
        return Classification(ReplyClass.unsubscribe, [f"opt-out keyword “{keyword.group(1)}”"])
    if revocation := _REVOCATION.search(flat):
        return Classification(ReplyClass.unsubscribe, _quoted(revocation))
    if absence := _OUT_OF_OFFICE.search(flat) or (
        _AUTO_SUBJECT.match(subject or "") and re.search(r"out\s+of\s+office", subject or "", re.I)
    ):
        found = find_date(flat, today=today, day_first=day_first)
        evidence = _quoted(absence) if isinstance(absence, re.Match) else [f"subject “{subject}”"]
        if found:
            evidence.append(f"return date from “{found.text}”")
        return Classification(ReplyClass.out_of_office, evidence, found.day if found else None)
    automatic = _AUTO_REPLY.search(flat)
    if automatic or _AUTO_SUBJECT.match(subject or ""):
        return Classification(ReplyClass.auto_reply, _quoted(automatic) or [f"subject “{subject}”"])
    wrong = _WRONG_PERSON.search(flat)
    person = _person_named(text)
    if person is not None and (person.name or (wrong and (person.email or person.phone))):
        evidence = _quoted(wrong) + [f"names {', '.join(person.as_dict().values())}"]
        return Classification(ReplyClass.referral, evidence, person=person)
    if wrong:
        return Classification(ReplyClass.wrong_person, _quoted(wrong))
    if later := _NOT_NOW.search(flat):
        found = find_date(flat, today=today, day_first=day_first)
        evidence = _quoted(later) + ([f"come back from “{found.text}”"] if found else [])
        return Classification(ReplyClass.not_now, evidence, found.day if found else None)
    if refusal := _NOT_INTERESTED.search(flat):
        return Classification(ReplyClass.not_interested, _quoted(refusal))
    if "?" in flat or _QUESTION_START.search(text):
        sentence = next((s for s in re.split(r"(?<=[.!?])\s+", flat) if s.endswith("?")), flat[:120])
        return Classification(ReplyClass.question, [f"asks “{sentence}”"])
    if agreement := _INTERESTED.search(flat):
        return Classification(ReplyClass.interested, _quoted(agreement))
    return Classification(ReplyClass.unclassified, ["no rule matched"])


def _model_person(value: Any) -> Person | None:
    if not isinstance(value, dict):
        return None
    fields = {k: " ".join(str(value[k]).split())[:120] for k in ("name", "email", "phone")
              if value.get(k) and str(value[k]).strip().lower() not in ("null", "none")}
    return Person(**fields) if fields else None


def classification_from_model(text: str) -> Classification | None:
    """The model's JSON answer as a Classification; None when it is not one (the rules decide)."""
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    try:
        answer = json.loads(match.group(0)) if match else None
        kind = ReplyClass(str(answer["class"]).strip().lower()) if isinstance(answer, dict) else None
    except (json.JSONDecodeError, KeyError, ValueError):
        return None
    if kind is None or not isinstance(answer, dict):
        return None
    evidence = " ".join(str(answer.get("evidence") or "").split())[:300]
    day = None
    if isinstance(answer.get("date"), str):
        try:
            day = date.fromisoformat(answer["date"][:10])
        except ValueError:
            day = None
    person = _model_person(answer.get("person")) if kind is ReplyClass.referral else None
    return Classification(kind, [f"“{evidence}”"] if evidence else [], day, person, source="model")
