"""Where a webhook may point: http(s) only, and never at this machine or the private network
unless the operator allows it (``CITYGRID_NOTIFY_ALLOW_HOSTS``).

A URL is checked when it is subscribed (``InvalidInput`` naming ``url``) and again before
every delivery, since DNS can change in between: the delivery then connects to the very
addresses that were checked (:func:`resolve_safe`), so a name that resolves to a public
address for the check and to a private one for the connection gets nowhere.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeAddress(Exception):
    """The URL may not be reached (scheme, host, or an address in a forbidden range)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts and the addresses its host resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _forbidden(address: IPAddress) -> str | None:
    """Why ``address`` is refused (``None``: a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _forbidden(address.ipv4_mapped)
    for test, why in (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (address.is_unspecified, "unspecified"),
        (not address.is_global, "non-public"),  # shared (100.64/10), documentation, …
    ):
        if test:
            return why
    return None


def _allowed(host: str, address: IPAddress, allow: tuple[str, ...]) -> bool:
    for entry in allow:
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name in the list: compared above
    return False


def split(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; ``UnsafeAddress`` otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeAddress(f"{url!r} is not a URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeAddress(f"a webhook URL must be http or https, not {scheme or 'nothing'!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeAddress(f"{url!r} names no host")
    if parts.username or parts.password:
        raise UnsafeAddress("a webhook URL carries no user or password; it is signed instead")
    return scheme, host, port or (443 if scheme == "https" else 80)


def resolve_safe(url: str, allow: tuple[str, ...]) -> Target:
    """``url`` checked: http(s), and every address its host resolves to public or allowed.

    Raises :class:`UnsafeAddress` saying why not.
    """
    scheme, host, port = split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror is an OSError
        raise UnsafeAddress(f"host {host!r} does not resolve: {exc}") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeAddress(f"host {host!r} resolves to no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone
        why = _forbidden(address)
        if why and not _allowed(host, address, allow):
            raise UnsafeAddress(
                f"host {host!r} resolves to {text}, a {why} address; webhooks go to public "
                "addresses unless CITYGRID_NOTIFY_ALLOW_HOSTS lists the host or its network"
            )
    return Target(url.strip(), scheme, host, port, addresses)


def check_url(url: str, allow: tuple[str, ...]) -> Target:
    """:func:`resolve_safe` for a subscription: ``InvalidInput`` naming ``url``."""
    try:
        return resolve_safe(url, allow)
    except UnsafeAddress as exc:
        raise InvalidInput(str(exc), field="url") from exc
