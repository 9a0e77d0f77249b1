"""Proof that values from leads, files and models reach a page's Markdown escaped."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from pages.common import md

# Values of the kinds an attacker puts in a lead, a file or a draft: an image the admin's
# browser would fetch, a coloured directive, and LaTeX with a link.
IMAGE = "![x](http://h/p)"
DIRECTIVE = ":red[alert] :material/warning:"
LATEX = "$\\href{http://h/q}{x}$"
# What stays of each once rendered, when it is not escaped.
LIVE_SYNTAX = ("![", "](", ":red[", ":material/", "$\\href")

_TEXT_ELEMENTS = (
    "markdown",
    "caption",
    "error",
    "warning",
    "info",
    "success",
    "title",
    "header",
    "subheader",
    "toast",
)
_LABELLED = (
    "button",
    "checkbox",
    "selectbox",
    "multiselect",
    "radio",
    "text_input",
    "text_area",
    "number_input",
    "metric",
    "tabs",
    "expander",
)


def is_live(body: str, syntax: str) -> bool:
    """`syntax` occurs in `body` with its first character not escaped by a backslash."""
    start = body.find(syntax)
    while start != -1:
        before = body[:start]
        if (len(before) - len(before.rstrip("\\"))) % 2 == 0:
            return True
        start = body.find(syntax, start + 1)
    return False


def markdown_bodies(app: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer: bodies, labels, metric values."""
    bodies = [str(e.value) for kind in _TEXT_ELEMENTS for e in getattr(app, kind)]
    bodies += [str(e.label) for kind in _LABELLED for e in getattr(app, kind)]
    bodies += [str(m.value) for m in app.metric]
    bodies += [p.proto.text for p in app.get("progress")]
    return bodies


def assert_shown_escaped(app: AppTest, *values: str) -> None:
    """Each value is on the page, escaped, and no Markdown body holds live image, link,
    directive or LaTeX syntax."""
    assert not app.exception
    bodies = markdown_bodies(app)
    shown = "\n".join(bodies)
    for body in bodies:
        for syntax in LIVE_SYNTAX:
            assert not is_live(body, syntax), f"live {syntax!r} in {body!r}"
    for value in values:
        assert md(value) in shown, f"{value!r} is not on the page"
