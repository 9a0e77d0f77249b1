"""SMS keywords: the carrier-standard words that opt out, opt back in, or ask for help.

A keyword is the whole message, in any case, with any punctuation or spacing around it ("Stop.",
"OPT-OUT", " quit! "): a sentence that merely contains the word ("don't stop now") is a reply for
the reply agent, which also decides revocations in other words ("please stop texting me").
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class Keyword(enum.StrEnum):
    opt_out = "opt_out"
    opt_in = "opt_in"
    help = "help"


KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        (
            "stop",
            "stopall",
            "stop all",
            "unsubscribe",
            "cancel",
            "end",
            "quit",
            "revoke",
            "optout",
            "opt out",
        ),
        Keyword.opt_out,
    ),
    **dict.fromkeys(("start", "unstop", "yes"), Keyword.opt_in),
    **dict.fromkeys(("help", "info"), Keyword.help),
}
# Opt-in words that are also ordinary answers ("Interested? Reply YES"): they opt back in only a
# number that is opted out; otherwise the message is a reply like any other.
AMBIGUOUS_OPT_IN = frozenset({"yes"})
# Longer than any keyword with generous punctuation: no need to normalise a whole letter.
_MAX_KEYWORD_CHARS = 40


@dataclass(frozen=True)
class KeywordMatch:
    keyword: Keyword
    word: str  # as normalised: "stop", "opt out"

    @property
    def ambiguous(self) -> bool:
        return self.word in AMBIGUOUS_OPT_IN


def keyword_words(body: str) -> str:
    """The message as lower-case words: letters and digits kept, everything else a separator."""
    text = unicodedata.normalize("NFKC", body).casefold()
    kept = "".join(ch if unicodedata.category(ch)[0] in ("L", "N") else " " for ch in text)
    return " ".join(kept.split())


def keyword_of(body: str) -> KeywordMatch | None:
    """The keyword the whole message is, or None for any other text."""
    if len(body) > _MAX_KEYWORD_CHARS:
        return None
    words = keyword_words(body)
    keyword = KEYWORDS.get(words)
    return None if keyword is None else KeywordMatch(keyword, words)
