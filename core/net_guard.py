"""Outgoing HTTP to addresses someone else chose: only to public internet addresses, vetted at connect.

The research fetch (a lead's website) and the webhook deliveries (an endpoint an admin typed) both
connect to hosts a user named. Every connection resolves the name once, refuses it when any answer
is not a globally routable address (unless the caller allows private ones: tests, development),
and connects to the very address it vetted, so a DNS answer that changes in between (rebinding)
cannot reach a private host; every read, write and TLS handshake ends by a deadline.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import certifi
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeAddress(Exception):
    """The host cannot be resolved, or resolves to an address that is not on the public internet."""


# Not reachable from the internet but not (all) flagged by `ipaddress` in Python 3.11.
_NOT_PUBLIC_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated
        "::/96",  # IPv4-compatible IPv6, deprecated
        "fec0::/10",  # site-local IPv6, deprecated but still routed inside some networks
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/32",  # Teredo tunnels
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _not_public(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 host: the IPv4 one decides.
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return f"it maps to {embedded}, {why}" if (why := _not_public(embedded)) else None
        if address.sixtofour is not None and (why := _not_public(address.sixtofour)):
            return f"it tunnels to {address.sixtofour}, {why}"
    if any(address.version == net.version and address in net for net in _NOT_PUBLIC_NETWORKS):
        return "not globally routable"
    if not address.is_global or address.is_multicast or address.is_reserved:
        return "not globally routable"
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why the fetch may not connect to `address`, or None when it is a public internet address.

    The one check each connection makes (tests replace it to let their loopback site through);
    an address embedded in another is judged by `_not_public` itself, never by a replacement.
    """
    return _not_public(address)


class Deadline:
    """The wall-clock time one fetch may take, DNS, connections, TLS and redirects included."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    @property
    def passed(self) -> bool:
        # A timer clamped to the deadline may wake a hair before it: that is the deadline too.
        return time.monotonic() >= self.ends - 0.05

    def clamp(self, timeout: float | None, timeout_error: type[Exception]) -> float:
        """`timeout` shortened to the time left; `timeout_error` once there is none."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise timeout_error(f"the fetch's {self.seconds:g} s deadline passed")
        return left if timeout is None else min(timeout, left)


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses of `host`, given up on after `timeout` seconds.

    getaddrinfo cannot be interrupted: it runs in a thread that is left to end on its own (the
    system resolver's own timeouts end it) while the fetch fails now.
    """
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    answer: list[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # a resolver error, or a name the IDNA codec refuses
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"no answer for {host} within {timeout:g} s")
    if isinstance(answer[0], Exception):
        raise UnsafeAddress(f"cannot resolve {host}: {answer[0]}")
    return [str(info[4][0]) for info in answer[0]]


def vetted_address(host: str, port: int, allow_private: bool, timeout: float) -> str:
    """Resolve `host` once: refused when any answer is not a public address, else the first one."""
    addresses = _resolve(host, port, timeout)
    if not addresses:
        raise UnsafeAddress(f"cannot resolve {host}")
    for text in addresses if not allow_private else ():
        address = ipaddress.ip_address(text.split("%")[0])
        if why := address_refusal(address):
            raise UnsafeAddress(f"{host} resolves to a private address ({address}: {why}): not contacted")
    return addresses[0]


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write (and TLS handshake) ends by the fetch's deadline.

    A per-read timeout alone restarts with each byte: a server dripping one byte a second would
    hold the fetch for as long as it likes.
    """

    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _VettedNetwork(httpcore.SyncBackend):
    """Connects to the very address it vetted: the name is resolved once, here.

    Checking a name and then letting the HTTP client resolve it again would leave a gap: a DNS
    answer that changes in between (rebinding) could send the fetch to a private host. TLS
    still verifies the certificate against the name, which httpcore passes as server_hostname.
    Every redirect's connection comes through here too, so it is vetted the same way.
    """

    def __init__(self, allow_private: bool, deadline: Deadline) -> None:
        self.allow_private, self.deadline = allow_private, deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        resolve_timeout = self.deadline.clamp(timeout, httpcore.ConnectTimeout)
        address = vetted_address(host, port, self.allow_private, resolve_timeout)
        timeout = self.deadline.clamp(timeout, httpcore.ConnectTimeout)
        stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self.deadline)


class VettedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that connects through `_VettedNetwork`."""

    def __init__(self, allow_private: bool, deadline: Deadline) -> None:
        context = _tls_context()
        super().__init__(verify=context)
        # The pool httpx built, replaced by the same pool on our network backend (httpx has no
        # public hook for it; the versions are pinned and the tests fetch through it).
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_VettedNetwork(allow_private, deadline)
        )


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs more than a small page's whole fetch."""
    return ssl.create_default_context(cafile=certifi.where())
