"""Finding links, email addresses and phone numbers in a draft however they are disguised.

The guard must see what a recipient's phone, mail program or browser would make of a draft, not
what its characters happen to be. So the text is scanned through a *skeleton*: NFKC-normalised,
every dot-like character a dot, every dash-like character a hyphen, other scripts' digits as ASCII
digits, look-alike letters of other scripts folded to the Latin letter they imitate (Unicode's
confusables data, shipped by the `confusable-homoglyphs` package), marks and invisible characters
dropped. Spans found in the skeleton are mapped back to the text as written, and a link's host is
read from that written text the way a browser reads it (WHATWG URL rules: a backslash is a slash,
userinfo ends at the last `@`, percent-escapes decoded, IPv4 in any radix, IDNA/UTS 46 mapping),
so that a host written with a Cyrillic `а` is compared in its punycode form and never matches the
Latin name it imitates.

Printable ASCII, the common case, skips the per-character work.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import unquote_to_bytes

import idna

_PLAIN = re.compile(r"[\x20-\x7e\n\t]*")

# Characters a reader takes for a full stop. UTS 46 maps the first four to "." in host names;
# the others only look like one, which is enough for a reader to type or trust them.
_DOT_LIKE = frozenset(
    "\u3002\uff0e\uff61\u2024\ufe52\u0701\u0702\ua4f8\ua60e\u06d4\u1362\u2e3c\u00b7\u0387"
    "\u2027\u30fb\uff65\u2e31\u22c5\u2219\u1427\u0589\u1803\u1809\ua4ff\U00010a50\u16eb\u2e33"
    "\U0001d16d"
)
_DASH_LIKE = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d\u30fc\u2e3a")
# An ideographic full stop between two CJK characters ends a sentence of prose written without
# spaces; only there is it not read as a dot (a host written in CJK after a scheme is still a link).
_CJK_STOPS = frozenset("\u3002\uff61")
_CJK_PREFIXES = ("CJK ", "HIRAGANA", "KATAKANA", "HANGUL")
# Other scripts used together in one word of ordinary writing.
_SCRIPT_FAMILIES = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HAN", "HANGUL"}),
    frozenset({"HAN", "BOPOMOFO"}),
)


@lru_cache(maxsize=1)
def _confusable_fold() -> dict[str, str]:
    """Each non-ASCII character that Unicode lists as confusable with an ASCII letter or digit."""
    from confusable_homoglyphs.confusables import confusables_data

    fold: dict[str, str] = {}

    def clean(text: str) -> str:
        return text.replace("\u200e", "").replace("\u200f", "")

    for key, homoglyphs in confusables_data.items():
        key = clean(key)
        if len(key) != 1:
            continue
        glyphs = [clean(h["c"]) for h in homoglyphs]
        if key.isascii():
            if key.isalnum():
                for glyph in glyphs:
                    if len(glyph) == 1 and not glyph.isascii():
                        fold.setdefault(glyph, key)
            continue
        ascii_glyphs = [g for g in glyphs if len(g) == 1 and g.isascii() and g.isalnum()]
        if ascii_glyphs:
            # A letter rather than a digit: "О" (Cyrillic) is an O in a host name; digits are
            # read from letters separately, by the phone scan.
            fold[key] = sorted(ascii_glyphs, key=lambda g: (not g.isalpha(), g))[0]
    for key in _DOT_LIKE:
        fold[key] = "."
    for key in _DASH_LIKE:
        fold[key] = "-"
    return fold


@lru_cache(maxsize=1)
def _script_of() -> tuple[list[list[int]], list[str]]:
    from confusable_homoglyphs.categories import categories_data

    return categories_data["code_points_ranges"], categories_data["iso_15924_aliases"]


def script_of(ch: str) -> str:
    """The Unicode script block alias of one character (LATIN, CYRILLIC, COMMON, ...)."""
    ranges, aliases = _script_of()
    code = ord(ch)
    low, high = 0, len(ranges) - 1
    while low <= high:
        middle = (low + high) // 2
        start, end, alias, _ = ranges[middle]
        if code < start:
            high = middle - 1
        elif code > end:
            low = middle + 1
        else:
            return aliases[alias]
    return "UNKNOWN"


def mixed_scripts(label: str) -> list[str]:
    """The scripts of one host label when it mixes scripts no language writes together."""
    scripts = {script_of(ch) for ch in label} - {"COMMON", "INHERITED", "UNKNOWN"}
    if len(scripts) < 2 or any(scripts <= family for family in _SCRIPT_FAMILIES):
        return []
    return sorted(scripts)


def _is_cjk(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(_CJK_PREFIXES)


@dataclass(frozen=True)
class Skeleton:
    """The text as scanned, and where each of its characters came from in the text as written."""

    text: str
    source: str
    origin: tuple[int, ...] | None  # None: the skeleton is the source (printable ASCII)

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the text as written behind the skeleton's span [start, end)."""
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return len(self.source), len(self.source)
        return self.origin[start], self.origin[end] if end < len(self.origin) else len(self.source)

    def written(self, start: int, end: int) -> str:
        """The text as written behind the skeleton's span [start, end)."""
        begin, stop = self.source_span(start, end)
        return self.source[begin:stop]


@lru_cache(maxsize=8)  # the guard reads one draft for links, addresses and numbers in turn
def skeleton(text: str) -> Skeleton:
    """The text normalised for scanning, one skeleton character per kept character of the text."""
    if _PLAIN.fullmatch(text):
        return Skeleton(text, text, None)
    fold = _confusable_fold()
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        if ch.isascii():
            chars.append(ch if ch >= " " or ch in "\n\t" else " ")
            origin.append(index)
            continue
        if ch in _CJK_STOPS and 0 < index < len(text) - 1:
            if _is_cjk(text[index - 1]) and _is_cjk(text[index + 1]):
                chars.append(" ")
                origin.append(index)
                continue
        for part in unicodedata.normalize("NFKC", ch):
            category = unicodedata.category(part)
            if category in ("Mn", "Me", "Cf", "Cc", "Cs", "Co", "Cn"):
                continue  # marks fold into the letter before; invisible characters vanish
            if part.isascii():
                chars.append(part)
            elif category == "Nd" or (category == "No" and unicodedata.digit(part, None) is not None):
                chars.append(str(unicodedata.digit(part)))
            elif category.startswith("Z"):
                chars.append(" ")
            else:
                chars.append(fold.get(part, part))
            origin.append(index)
    return Skeleton("".join(chars), text, tuple(origin))


# ----------------------------------------------------------------------------------------------
# Links

# Possessive labels: a word that is not followed by a dot is given up at once, not letter by letter.
_LABEL = r"[^\W_][\w-]*+"
_TLD = r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
_EMAIL = re.compile(rf"[\w.%+'-](?<![\w.%+'-].)[\w.%+'-]*+@(?:{_LABEL}\.)+{_TLD}\b")
_SPECIAL_SCHEMES = ("http", "https", "ftp", "ws", "wss", "file")
# A scheme, plain or defanged ("hxxp", "h**p"), then what follows it up to a space or a quote.
_AFTER_COLON = re.compile(r":(?P<rest>[^\s<>\"'`]+)")
_SCHEME_BEFORE = re.compile(r"(?<![\w+.-])[a-z][a-z0-9+.*-]{0,30}\Z", re.IGNORECASE)
# "//host" and "\\host": protocol-relative, read against the page or client's own scheme.
_RELATIVE_URL = re.compile(r"(?<![\w.:/\\])[/\\]{2}(?P<rest>[^\W_][^\s<>\"'`]*)")
_WWW = re.compile(r"(?<![\w.@-])www\d{0,3}\.[^\s<>\"'`]+", re.IGNORECASE)
# A name of dot-separated labels ending in a plausible top-level domain, with its port and path;
# it starts only at the first label of a name, so a long chain of labels is read once.
_DOMAIN_LIKE = re.compile(
    rf"(?P<host>[^\W_](?<![^\W_].)(?<![\w-]\..)[\w-]*+\.(?:{_LABEL}\.)*{_TLD})\.?(?![^\W_]|-)(?P<rest>[:/][^\s<>\"'`]*)?",
)
_DOTTED_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w.]\d)(?:[:/][^\s<>\"'`]*)?")
_BRACKET_IPV6 = re.compile(r"\[(?P<address>[0-9a-f:.]*:[0-9a-f:.]*)\]", re.IGNORECASE)
_BARE_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9a-f:]*::|(?:[0-9a-f]{1,4}:){2})[0-9a-f:.]{6,}(?![\w:])", re.IGNORECASE
)
_DEFANGED_DOT = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}", re.IGNORECASE)
_DEFANGED_COLON = re.compile(r"\[:\]|\(:\)")
_SCRIPT_SCHEMES = re.compile(
    r"(?<![\w+.-])(?:javascript|vbscript|livescript):|(?<![\w+.-])data:[a-z]+/[a-z]", re.IGNORECASE
)
_TRAILING = ".,;:!?)]}*_'\""
# Suffixes of ordinary writing ("Node.js") that no registry delegates; other names are links.
_NOT_TLDS = frozenset({"js", "jsx", "ts", "tsx", "json", "txt", "pdf", "csv", "xlsx", "docx", "html", "htm"})
_LINK_TARGET = re.compile(
    r"""(?:href|src)\s*=\s*(?P<q>["'])(?P<quoted>[^"'<>]*)(?P=q)|\]\((?P<markdown>[^()\s]*\n[^()\s]*)\)""",
    re.IGNORECASE,
)
_DOTTED_WORD = re.compile(r"\.(?<=[\w-]\.)[^\W_]")  # a dot inside a word: found from the dot
_LINK_MARK = re.compile(r"[.:/@\\\[]\S")
_DEFANGED_SCHEME = re.compile(r"h[tx*]{2}ps?|fxps?")
_PORT_OR_PATH = re.compile(r"[:/]")
_AUTHORITY_END = re.compile(r"[/\\?#]")  # for special schemes a backslash ends it as a slash does
_FORBIDDEN_HOST = re.compile(r"[\x00-\x20\x7f#%/:<>?@\[\\\]^|]")


@dataclass(frozen=True)
class Link:
    """One link in a draft: as written, its host as a browser would look it up, and any refusal."""

    written: str
    written_host: str
    host: str | None  # the IDNA (ASCII) form; None when there is no host a browser would accept
    refusal: str | None = None  # a reason to refuse it whatever the allow-list says
    looks_like: str | None = None  # the host its look-alike letters imitate, when they differ
    span: tuple[int, int] = (0, 0)  # where it is in the text as written


def _strip_trailing(text: str) -> str:
    while text and text[-1] in _TRAILING:
        if text[-1] == ")" and text.count("(") >= text.count(")"):
            break
        text = text[:-1]
    return text


def _ipv4_number(part: str) -> int | None:
    """One part of a WHATWG IPv4 address: decimal, 0x-hexadecimal or 0-octal."""
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10)
    except ValueError:
        return None


def _ends_in_number(host: str) -> bool:
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    return bool(last) and (last.isdigit() or bool(re.fullmatch(r"0x[0-9a-f]*", last)))


def _host_from_authority(authority: str) -> tuple[str, str | None]:
    """The host written in an authority and a refusal when the authority hides where it leads."""
    if "@" in authority:
        return authority.rsplit("@", 1)[1], "it has a user name before its host (text before an @)"
    if authority.startswith("["):
        return authority, "it points at a bare IP address"
    host = authority
    if ":" in authority:
        host, port = authority.rsplit(":", 1)
        if port and not port.isdigit():
            return host, "its port is not a number"
    return host, None


def normalise_host(written: str) -> tuple[str | None, str | None]:
    """A host as a browser looks it up (IDNA ASCII form) and a refusal, from the host as written."""
    host = "".join(ch for ch in written if unicodedata.category(ch) != "Cf")
    if "%" in host:  # decoded after invisible characters go: an encoded one is a forbidden one
        try:
            host = unquote_to_bytes(host).decode("utf-8")
        except UnicodeDecodeError:
            return None, "its host is not readable"
    if not host.isascii():
        host = unicodedata.normalize("NFKC", host)
    host = host.lower().rstrip(".")
    if not host:
        return None, "it has no host"
    if _ends_in_number(host) or (":" in host and _is_ip(host)):
        return None, "it points at a bare IP address"
    if host.isascii():
        if _FORBIDDEN_HOST.search(host):
            return None, "its host is not a valid name"
        labels = host.split(".")
        if any(label.startswith("xn--") for label in labels):
            try:
                unicode_host = idna.decode(host)
            except (idna.IDNAError, UnicodeError, ValueError):
                return None, "its host is not a valid international name"
            if any(mixed_scripts(label) for label in unicode_host.split(".")):
                return host, "its host mixes letters of different scripts"
        return host, None
    try:
        ascii_host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None, "its host is not a valid international name"
    if _ends_in_number(ascii_host):
        return None, "it points at a bare IP address"
    for label in re.split(r"[.\u3002\uff0e\uff61]", host):
        scripts = mixed_scripts(label)
        if scripts:
            return ascii_host, f"its host mixes {' and '.join(s.title() for s in scripts)} letters"
    return ascii_host, None


def _is_ip(host: str) -> bool:
    if _ends_in_number(host):
        parts = host.rstrip(".").split(".")
        return len(parts) <= 4 and all(_ipv4_number(p) is not None for p in parts)
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _link(written: str, skeleton_rest: str, written_rest: str) -> Link:
    """A link from what follows its scheme (or what starts with its host), in skeleton and as
    written. As for http(s), slashes and backslashes before the host are all skipped."""
    authority = _AUTHORITY_END.split(written_rest.lstrip("/\\"), maxsplit=1)[0]
    written_host, refusal = _host_from_authority(authority)
    host, host_refusal = normalise_host(written_host)
    if refusal is None and "\\" in written_rest:
        refusal = "it contains a backslash, which browsers and mail programs read differently"
    looks_like = None
    if host and not written_host.isascii():
        skeleton_authority = _AUTHORITY_END.split(skeleton_rest.lstrip("/\\"), maxsplit=1)[0]
        folded = _host_from_authority(skeleton_authority)[0].lower().rstrip(".")
        looks_like = folded if folded.isascii() and folded != host else None
    return Link(written, written_host, host, refusal or host_refusal, looks_like)


def _collapse(skel: Skeleton, pattern: re.Pattern[str], replacement: str) -> Skeleton:
    """The skeleton with each match replaced, keeping where every character came from."""
    if not pattern.search(skel.text):
        return skel
    origin = skel.origin if skel.origin is not None else tuple(range(len(skel.text)))
    chars: list[str] = []
    kept: list[int] = []
    position = 0
    for match in pattern.finditer(skel.text):
        chars.append(skel.text[position : match.start()])
        kept.extend(origin[position : match.start()])
        chars.append(replacement)
        kept.extend([origin[match.start()]] * len(replacement))
        position = match.end()
    chars.append(skel.text[position:])
    kept.extend(origin[position:])
    return Skeleton("".join(chars), skel.source, tuple(kept))


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def find_links(text: str, *, every_domain: bool = False) -> list[Link]:
    """Every link in the text: URLs with any scheme, //host, www. names, bare IP addresses and
    names with a top-level domain; with `every_domain`, also names whose suffix is no registry's
    ("Node.js"), as SMS needs: a phone turns any such name into a link."""
    links = _links_in_skeleton(text, every_domain)
    # In an href or a Markdown link target a browser removes line breaks before it reads the URL.
    lower = text.lower()
    marked = "\n" in text and ("](" in text or "href" in lower or "src" in lower)
    for match in _LINK_TARGET.finditer(text if marked else ""):
        target = match.group("quoted") or match.group("markdown") or ""
        if "\n" in target:
            joined = find_links(target.replace("\n", ""), every_domain=every_domain)
            links += [replace(link, span=match.span()) for link in joined]
    return links


def _links_in_skeleton(text: str, every_domain: bool) -> list[Link]:
    skel = _collapse(_collapse(skeleton(text), _DEFANGED_DOT, "."), _DEFANGED_COLON, ":")
    scan = skel.text
    if not _LINK_MARK.search(scan):
        return []  # no dot, colon, slash, @ or bracket inside a word: no link can be written
    lower = scan.lower()
    found: list[tuple[int, int, Link]] = []

    def add(start: int, end: int, link: Link) -> None:
        nonlocal scan
        found.append((start, end, link))
        scan = _blank(scan, start, end)  # read once: a later pattern does not see it again

    def ip_link(start: int, end: int, host: str) -> Link:
        return Link(skel.written(start, end), host, None, "it points at a bare IP address")

    # Each pattern runs only where its mark is in the text: most drafts have one link or none.
    for match in _SCRIPT_SCHEMES.finditer(scan if "script:" in lower or "data:" in lower else ""):
        found.append(
            (match.start(), match.end(), Link(skel.written(*match.span()), "", None, "it runs a script"))
        )
    for match in _AFTER_COLON.finditer(scan):  # found from its colon: far fewer places to try
        scheme_match = _SCHEME_BEFORE.search(scan, max(0, match.start() - 32), match.start())
        if scheme_match is None:
            continue
        scheme = scheme_match.group(0).lower()
        rest = _strip_trailing(match.group("rest"))
        special = scheme in _SPECIAL_SCHEMES or _DEFANGED_SCHEME.fullmatch(scheme) is not None
        if not special and not rest.startswith(("//", "\\\\", "/\\", "\\/")):
            continue  # "Note:x" is prose; a non-special scheme is a link only with //
        start, end = scheme_match.start(), match.start("rest") + len(rest)
        written_rest = skel.written(match.start("rest"), end)
        add(start, end, _link(skel.written(start, end), rest, written_rest))
    for match in _RELATIVE_URL.finditer(scan if "//" in scan or "\\" in scan else ""):
        rest = _strip_trailing(match.group("rest"))
        start, end = match.start(), match.start("rest") + len(rest)
        written = skel.written(start, end)
        add(start, end, _link(written, rest, written))
    for match in _EMAIL.finditer(scan if "@" in scan else ""):
        scan = _blank(scan, *match.span())  # checked as addresses, not as links
    for match in _BRACKET_IPV6.finditer(scan if "[" in scan else ""):
        if _is_ip(match.group("address")):
            add(*match.span(), ip_link(*match.span(), skel.written(*match.span())))
    for match in _WWW.finditer(scan if "www" in lower else ""):
        rest = _strip_trailing(match.group(0))
        start, end = match.start(), match.start() + len(rest)
        written = skel.written(start, end)
        add(start, end, _link(written, rest, written))
    dotted = _DOTTED_WORD.search(scan) is not None
    for match in _DOTTED_IPV4.finditer(scan if dotted else ""):
        address = _PORT_OR_PATH.split(match.group(0), maxsplit=1)[0]
        if all(int(part) <= 255 for part in address.split(".")):
            end = match.start() + len(_strip_trailing(match.group(0)))
            add(match.start(), end, ip_link(match.start(), end, address))
    for match in _BARE_IPV6.finditer(scan if scan.count(":") > 1 else ""):
        if _is_ip(match.group(0)):
            add(*match.span(), ip_link(*match.span(), match.group(0)))
    for match in _DOMAIN_LIKE.finditer(scan if dotted else ""):
        tld = match.group("host").rsplit(".", 1)[1].lower()
        if not every_domain and match.group("rest") is None and tld in _NOT_TLDS:
            continue
        rest = _strip_trailing(match.group(0))
        start, end = match.start(), match.start() + len(rest)
        written = skel.written(start, end)
        found.append((start, end, _link(written, rest, written)))
    found.sort(key=lambda item: item[0])
    return [replace(link, span=skel.source_span(start, end)) for start, end, link in found]


def emails_in(text: str) -> list[str]:
    """Every email address, as written (look-alike letters included)."""
    skel = skeleton(text)
    if "@" not in skel.text:
        return []
    return [skel.written(m.start(), m.end()) for m in _EMAIL.finditer(skel.text)]


# ----------------------------------------------------------------------------------------------
# Phone numbers

# Letters read as digits inside a number: O for 0, l, I and | for 1, S for 5, B for 8.
_LOOKALIKE_DIGITS = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1", "|": "1", "S": "5", "B": "8"})
_DIGIT_RUN = re.compile(r"[OolI|SB]*+\d[0-9OolI|SB]*+")
# A word made only of O, o, l, I and |, beside a number, is read as digits too ("415 555 OlOO").
_STANDALONE_WORD = re.compile(r"[OolI|](?<![^\W_|].)[OolI|]*+(?![^\W_|])")
_SEPARATOR_BEFORE = re.compile(r"\d[\s.\-()/\\_]{0,3}$")
_SEPARATOR_AFTER = re.compile(r"[\s.\-()/\\_]{0,3}\d")
_LOOKALIKE_AFTER = re.compile(r"\d[\s.\-()/\\_]{0,3}[OolI|SB]")
_LOOKALIKE_BEFORE = re.compile(r"[OolI|SB][\s.\-()/\\_]{0,3}\d")
_ANY_DIGIT = re.compile(r"\d")
# Numbers of ordinary prose that are not phone numbers: dates, times, years, ZIP+4, money.
_NOT_PHONES = re.compile(
    r"(?=[\d$\u20ac\u00a3\u00a5])"  # fails fast where no number starts
    r"(?<!\d)(?:"
    r"(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:(?:19|20)\d\d|\d\d)"
    r"|(?:19|20)\d\d\s?[-/]\s?(?:(?:19|20)\d\d|\d\d)"
    r"|\d{5}-\d{4}"
    r"|\d{1,2}:\d\d(?::\d\d)?"
    r")(?!\d)"
    r"|(?<![\d,])\d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?"
    r"|[$\u20ac\u00a3\u00a5]\s?(?:\d{1,3}(?:,\d{3})+|\d{1,6})(?:\.\d{1,2})?(?![\d,])"
    r"|(?<![\d.,])\d{1,3}(?:[.,]\d{1,2})?\s?%"
)
_PHONE = re.compile(r"(?:\+|\()?\d(?:(?:[\s.\-()/\\_]{0,3}|[,:])\d)+")
_DIGIT_GROUPS = re.compile(r"\d(?:(?:[\s.\-()/\\_]{0,3}|[,:])\d)+")  # _PHONE, found from a digit
MIN_PHONE_DIGITS = 7
# Vanity numbers ("1-800-FLOWERS"): an area code, then seven keypad letters or digits.
_VANITY = re.compile(
    r"(?<![\w+-])(?P<prefix>(?:\+?1[\s.-]?)?\(?(?P<area>[2-9]\d\d)\)?(?P<sep>[.-])?\s?)"
    r"(?P<word>(?:[A-Za-z0-9][.-]?){6}[A-Za-z0-9])(?![\w-])"
)
_VANITY_MARK = re.compile(r"\d{3}\)?[.-]?\s?[A-Za-z0-9]{0,3}[A-Za-z][A-Za-z0-9.-]{3}")
_TOLL_FREE = frozenset({"800", "833", "844", "855", "866", "877", "888"})
_KEYPAD = str.maketrans(
    {
        letter: str(digit)
        for digit, letters in enumerate(("", "", "abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz"))
        for letter in letters + letters.upper()
    }
)
_CONTEXT = 12  # characters either side of a number that decide whether it is a date or an amount
MIN_WRITTEN_DIGITS = 3


@dataclass(frozen=True)
class PhoneNumber:
    written: str  # as in the draft
    digits: str  # the digits it is read as, with a leading + when written


def _digits_view(text: str) -> str:
    """The skeleton with letters that stand for digits beside a number turned into digits."""
    if not (_LOOKALIKE_AFTER.search(text) or _LOOKALIKE_BEFORE.search(text)):
        return text  # no look-alike letter within a separator or three of a digit
    chars: list[str] | None = None
    for run in _DIGIT_RUN.finditer(text):
        if run.group(0).isdigit():
            continue
        chars = chars or list(text)
        start, end = run.start(), run.end()
        # Letters that go on a word ("Hello2026", "4155550199call") stay letters.
        if start > 0 and text[start - 1].isalpha():
            while not text[start].isdigit():
                start += 1
        if end < len(text) and text[end].isalpha():
            while not text[end - 1].isdigit():
                end -= 1
        chars[start:end] = text[start:end].translate(_LOOKALIKE_DIGITS)
    for word in _STANDALONE_WORD.finditer(text):
        start, end = word.span()
        before = "".join(chars[max(0, start - 4) : start]) if chars else text[max(0, start - 4) : start]
        if _SEPARATOR_BEFORE.search(before) or _SEPARATOR_AFTER.match(text, end):
            chars = chars or list(text)
            chars[start:end] = text[start:end].translate(_LOOKALIKE_DIGITS)
    return "".join(chars) if chars else text


def phones_in(text: str, *, ignore: tuple[str, ...] = ()) -> list[PhoneNumber]:
    """Every run of seven or more digits that reads as a phone number, however it is written.

    `ignore` holds text that is known not to carry a number to call (the tenant's postal address).
    """
    skel = skeleton(text)
    scan = skel.text
    if len(_ANY_DIGIT.findall(scan)) < MIN_WRITTEN_DIGITS:
        return []
    for known in ignore:
        if known and known in scan:
            scan = scan.replace(known, " " * len(known))
    numbers = []
    for match in _VANITY.finditer(scan if _VANITY_MARK.search(scan) else ""):
        word = match.group("word")
        toll_free = match.group("area") in _TOLL_FREE
        word = word.replace("-", "").replace(".", "")
        if word.isdigit() or not (toll_free or (word.isupper() and match.group("sep"))):
            continue  # a vanity number is toll-free, or capitals joined to its area code by - or .
        digits = re.sub(r"\D", "", match.group("prefix")) + word.translate(_KEYPAD)
        numbers.append(PhoneNumber(skel.written(*match.span()).strip(), digits))
        scan = _blank(scan, *match.span())
    view = _digits_view(scan)
    for candidate in _DIGIT_GROUPS.finditer(view):
        if len(_ANY_DIGIT.findall(candidate.group(0))) < MIN_PHONE_DIGITS:
            continue  # the common case: no run of digits long enough to be a number
        begin = candidate.start()
        if begin and view[begin - 1] in "+(":
            begin -= 1
        # Read the run again with the dates, times and amounts in and around it blanked out.
        offset = max(0, begin - _CONTEXT)
        window = _NOT_PHONES.sub(_spaces, view[offset : candidate.end() + _CONTEXT])
        for match in _PHONE.finditer(window, begin - offset, candidate.end() - offset):
            digits = re.sub(r"\D", "", match.group(0))
            if len(digits) < MIN_PHONE_DIGITS:
                continue
            start, end = offset + match.start(), offset + match.end()
            if view[start] == "(" and ")" not in match.group(0):
                start += 1
            if len(_ANY_DIGIT.findall(scan, start, end)) < MIN_WRITTEN_DIGITS:
                continue
            plus = "+" if match.group(0).startswith("+") else ""
            numbers.append(PhoneNumber(skel.written(start, end).strip(), plus + digits))
    return numbers


def _spaces(match: re.Match[str]) -> str:
    return " " * len(match.group(0))
