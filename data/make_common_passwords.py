"""Writes data/common_passwords.txt: the most common passwords that a length rule alone lets by.

Run `python data/make_common_passwords.py` (needs zxcvbn, a runtime dependency). The source is
zxcvbn's frequency-ranked list of the 30,000 passwords seen most often in leaks; kept are those
of at least core.auth.MIN_PASSWORD_LENGTH characters (shorter ones fail the length rule before
the list is read), lower-cased, in their rank order. The output is the same every time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zxcvbn.frequency_lists import FREQUENCY_LISTS

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from core.auth import COMMON_PASSWORDS_FILE, MIN_PASSWORD_LENGTH  # noqa: E402


def main() -> None:
    kept = dict.fromkeys(
        word.strip().lower()
        for word in FREQUENCY_LISTS["passwords"]
        if len(word.strip()) >= MIN_PASSWORD_LENGTH
    )
    header = (
        f"# The most common passwords of {MIN_PASSWORD_LENGTH} characters or more, most common first:\n"
        "# zxcvbn's frequency-ranked list of leaked passwords. Written by data/make_common_passwords.py.\n"
    )
    COMMON_PASSWORDS_FILE.write_text(header + "\n".join(kept) + "\n", encoding="utf-8")
    print(f"wrote {len(kept)} passwords to {COMMON_PASSWORDS_FILE}")


if __name__ == "__main__":
    main()
