"""The token estimate, by fixed numbers: it reserves budget and bills the offline model."""

from __future__ import annotations

import pytest

from core.llm.tokens import estimate_prompt_tokens, estimate_text_tokens


@pytest.mark.parametrize(("text", "tokens"), [("", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_about_four_characters_a_token_and_never_none(text: str, tokens: int) -> None:
    assert estimate_text_tokens(text) == tokens


def test_each_message_adds_four_tokens_of_framing() -> None:
    assert estimate_prompt_tokens(["abcd", "abcde"]) == (1 + 4) + (2 + 4)
    assert estimate_prompt_tokens([]) == 0
