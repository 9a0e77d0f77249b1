"""Token estimates for budgeting and for the offline model: about four characters per token.

OpenAI's tokenizers average close to four characters of English per token; each chat message
adds a few tokens of framing. The estimate is used before a call (to reserve budget) and by the
offline model, which has no tokenizer, to report usage the same way a provider would.
"""

from __future__ import annotations

from collections.abc import Iterable

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role and separators around each chat message


def estimate_text_tokens(text: str) -> int:
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


def estimate_prompt_tokens(contents: Iterable[str]) -> int:
    """The input tokens of a chat prompt made of these message contents."""
    return sum(estimate_text_tokens(text) + TOKENS_PER_MESSAGE for text in contents)
