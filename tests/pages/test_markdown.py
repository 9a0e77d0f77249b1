"""md(): a value from a lead, a file or a model shows in Markdown as the very text it is."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from pages.common import md
from tests.pages.markdown_checks import is_live

# CommonMark with the GFM parts a reference parser offers; Streamlit adds directives, LaTeX and
# autolinks, checked by the string rules below.
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])

HOSTILE = [
    "![x](http://h/p)",
    "![x][r]\n\n[r]: http://h/p",
    "\\![x](http://h/p)",  # a backslash of its own before the image
    "[click](javascript:alert(1))",
    "<http://h/p>",
    "<img src=http://h/p>",
    "**bold** _it_ ~~gone~~ `code`",
    "__init__ and a__b__c and _x_y_",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "# Heading",
    "> quote",
    "1. first",
    "7) seventh",
    "- item",
    "+ item",
    "---",
    "===",
    "&#33;&#91;x&#93;(http://h/p)",
    "AT&amp;T",
    "trailing backslash\\",
    "Ada Lovelace, CTO (Engines) — 50% off! #1",
]
STREAMLIT_ONLY = [
    (":red[alert]", ":red["),
    (":blue-background[x]", ":blue-background["),
    (":material/warning:", ":material/"),
    (":smile: hello", ":smile"),
    ("$\\href{http://h/q}{x}$", "$"),
    ("$$x^2$$", "$"),
    ("see http://h/p now", "http:"),
    ("see www.h.example now", "www."),
]


def _inline_tokens(markdown: str) -> list[str]:
    tokens = PARSER.parse(markdown)
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], tokens
    return [child.type for child in tokens[1].children or []]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_renders_as_its_own_text_and_nothing_else(value: str) -> None:
    escaped = md(value)
    assert set(_inline_tokens(escaped)) <= {"text", "text_special"}  # no image, link, code, emphasis
    text = "".join(child.content for child in PARSER.parse(escaped)[1].children or [])
    assert text == re.sub(r"\n+", " ", value)  # the reader sees the value as written, on one line
    rendered = PARSER.render(escaped)
    assert "<img" not in rendered and "<a " not in rendered


@pytest.mark.parametrize(("value", "syntax"), STREAMLIT_ONLY)
def test_streamlit_directives_latex_and_autolinks_are_escaped(value: str, syntax: str) -> None:
    escaped = md(value)
    assert not is_live(escaped, syntax)
    text = "".join(child.content for child in PARSER.parse(escaped)[1].children or [])
    assert text == value  # the reader sees the value as written


def test_inside_a_line_it_stays_inside_the_line() -> None:
    name = "Ada\n# Owner\n![x](http://h/p)"
    line = f"**{md(name)}** · step 1"
    tokens = _inline_tokens(line)  # one paragraph: no heading, no image, the bold intact
    assert "strong_open" in tokens and set(tokens) <= {"text", "strong_open", "strong_close"}
    assert not is_live(line, "![") and "\n" not in line


def test_plain_text_is_left_as_written() -> None:
    # Error messages quoting a row stay readable: only syntax is escaped.
    assert md("row 17: phone '12345' is not a valid number for US.") == (
        "row 17: phone '12345' is not a valid number for US."
    )
    assert md("the system_prompt cannot be changed now") == "the system_prompt cannot be changed now"
    assert md(None) == "" and md(42) == "42"
