"""A real SMTP server for the tests (aiosmtpd on a free port of 127.0.0.1) that keeps every
message it is given, as the bytes a mail server would store."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from core.inbound.dsn import parse_email


@dataclass
class CapturedMail:
    host: str
    port: int
    messages: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def only(self) -> EmailMessage:
        """The one message received, parsed."""
        assert len(self.messages) == 1
        return parse_email(self.messages[0])


def _free_port() -> int:
    # aiosmtpd's Controller connects to its own port to check it started, so port 0 will not do.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_capture() -> Iterator[CapturedMail]:
    captured = CapturedMail("127.0.0.1", _free_port())
    controller = Controller(captured, hostname=captured.host, port=captured.port)
    controller.start()
    yield captured
    controller.stop()
