"""SMS segment counts: GSM-7 and UCS-2 limits, extension characters, emoji and straightened typography."""

from __future__ import annotations

import pytest

from core.compliance.segments import segments_for, straighten_for_gsm


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€", "GSM-7", 2, 1),  # the euro sign is in the extension table: two septets
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€", "GSM-7", 154, 1),
        ("a" * 159 + "[", "GSM-7", 161, 2),
        ("ж" * 70, "UCS-2", 70, 1),
        ("ж" * 71, "UCS-2", 71, 2),
        ("ж" * 134, "UCS-2", 134, 2),
        ("ж" * 135, "UCS-2", 135, 3),
        ("😀", "UCS-2", 2, 1),  # one emoji: a surrogate pair, two UTF-16 code units
        ("a" * 69 + "😀", "UCS-2", 71, 2),
        ("Hi \u2019there\u2019", "UCS-2", 10, 1),  # curly quotes force UCS-2 ...
    ],
)
def test_segments_for(text: str, encoding: str, units: int, segments: int) -> None:
    count = segments_for(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_extension_pair_is_never_split_across_parts() -> None:
    # 152 plain characters + one two-septet character = 154 septets: two parts of 153 would fit
    # 306, but the escape pair cannot straddle the boundary at 153.
    assert segments_for("a" * 152 + "€" + "a" * 152).segments == 3
    assert segments_for("a" * 151 + "€" + "a" * 153).segments == 2


def test_straightened_typography_fits_gsm7() -> None:
    text = straighten_for_gsm("\u201cHi\u201d \u2014 it\u2019s\u2026 ok\u00a0now")
    assert text == '"Hi" - it\'s... ok now'
    assert segments_for(text).encoding == "GSM-7"  # ... and straightened they are GSM-7 again
