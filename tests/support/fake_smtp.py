"""A local SMTP relay (aiosmtpd) for the tests of the SMTP adapter and of the pipeline's refusals."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller


class Inbox:
    """What the relay accepted; a recipient starting with `bounce@` is refused with a 550."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("bounce@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def free_port() -> int:
    # aiosmtpd's Controller connects to its own port to check it started, so port 0 will not do.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_relay(
    authenticator: Any, inbox: Inbox | None = None, **options: Any
) -> Iterator[tuple[Controller, Inbox]]:
    """A relay on 127.0.0.1 that requires a login checked by `authenticator`; `options` go to aiosmtpd
    (TLS, STARTTLS). Login without TLS, the default, keeps the relay simple; aiosmtpd warns about it."""
    inbox = inbox or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_required=True, **{"auth_require_tls": False, **options})
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()
