"""SMS segments: GSM-7 (basic and extension table) or UCS-2, 160/153 and 70/67 per segment."""

from __future__ import annotations

from dataclasses import dataclass

# The GSM 03.38 basic character set (the escape character itself left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these costs an escape plus the character, two septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Typography that word processors and models like, mapped to what GSM-7 can carry.
_STRAIGHTENED = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2012": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2022": "-",
    }
)


@dataclass(frozen=True)
class SegmentCount:
    """How an SMS body travels: its encoding, its length in that encoding's units and its parts."""

    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # the capacity of each part: 160/153 or 70/67


def straighten_for_gsm(text: str) -> str:
    """Curly quotes, dashes, ellipses and odd spaces replaced by their plain GSM-7 forms."""
    return text.translate(_STRAIGHTENED)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _pack(unit_sizes: list[int], single: int, part: int) -> int:
    """Segments needed, never splitting one character (an escape pair, a surrogate pair)."""
    total = sum(unit_sizes)
    if total <= single:
        return 1 if total else 0
    segments, used = 1, 0
    for size in unit_sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return segments


def segments_for(text: str) -> SegmentCount:
    """The encoding and segment count a carrier would use for this exact text."""
    if is_gsm7(text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        count = _pack(sizes, GSM7_SINGLE, GSM7_PART)
        return SegmentCount("GSM-7", sum(sizes), count, GSM7_SINGLE if count <= 1 else GSM7_PART)
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    count = _pack(sizes, UCS2_SINGLE, UCS2_PART)
    return SegmentCount("UCS-2", sum(sizes), count, UCS2_SINGLE if count <= 1 else UCS2_PART)
