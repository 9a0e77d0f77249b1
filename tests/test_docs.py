"""The documentation cannot rot: .env.example, the README commands and CI are checked here."""

from __future__ import annotations

import re

from core.config import ROOT, Settings


def _env_names(field: str) -> set[str]:
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if alias is not None:
        return {str(choice) for choice in getattr(alias, "choices", [alias])}
    return {f"LEADFLOW_{field.upper()}"}


def test_env_example_lists_every_setting() -> None:
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    missing = [f for f in Settings.model_fields if not (_env_names(f) & listed)]
    assert missing == []
    unknown = {n for n in listed if not any(n in _env_names(f) for f in Settings.model_fields)}
    assert unknown == set()


def test_streamlit_config_comments_every_key() -> None:
    lines = (ROOT / ".streamlit" / "config.toml").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-zA-Z]+\s*=", line):
            assert lines[number - 1].startswith("#"), f"config.toml key without a comment: {line}"
    assert "enforceSerializableSessionState = true" in "\n".join(lines)
