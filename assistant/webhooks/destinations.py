"""Where webhooks may be sent: public addresses, and the private networks an admin allowed.

A webhook is a request Helpmate makes on an admin's word, and what went wrong with it (the status
and the first 200 characters of the answer) is shown back to admins. Unchecked, an admin key
could make Helpmate read what only its own network reaches: the cloud metadata service at
169.254.169.254, a database's HTTP port, an internal admin page. So a webhook's host must resolve
to public addresses only, unless its network is named in ``HELPMATE_WEBHOOK_ALLOWED_NETWORKS``
(a help desk inside the company's network, a receiver on the same machine)::

    address = resolve("https://desk.example.com/hooks", settings.webhook_networks)  # "203.0.113.9", or BlockedDestination

The check runs when a webhook is added and again before each POST, which then connects to the
address that was checked (``pinned``), so a name that points elsewhere a moment later cannot slip
past it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Iterable
from urllib.parse import SplitResult, urlsplit

from assistant.config import Network

SETTING = "HELPMATE_WEBHOOK_ALLOWED_NETWORKS"


class BlockedDestination(ValueError):
    """The URL's host is (or resolves to) an address webhooks may not reach; the message says how to allow it."""


class UnresolvedHost(OSError):
    """The URL's host name does not resolve now (try again later)."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def _check(address: str, host: str, allowed: Iterable[Network]) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if _is_public(ip) or any(ip in network for network in allowed):
        return
    raise BlockedDestination(
        f"{host} is {ip}, not a public address: webhooks go to public addresses only, so that an admin key cannot "
        f"reach services on Helpmate's own network. To send to a receiver on a private network, add its network to "
        f"{SETTING} (for example {ipaddress.ip_network(ip)})")


def resolve(url: str, allowed: Iterable[Network]) -> str:
    """The address to connect to for ``url``: every address its host has must be public or allowed.

    Raises BlockedDestination, or UnresolvedHost when the name does not resolve (now).
    """
    allowed = list(allowed)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvedHost(f"{host} does not resolve: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:  # all of them: a name with one public and one private address is refused
        _check(address, host, allowed)
    return addresses[0]


def check_url(url: str, allowed: Iterable[Network]) -> None:
    """When a webhook is added: refuse a blocked host; a name that does not resolve yet is let through
    (the receiver may not be set up; each POST checks again)."""
    try:
        resolve(url, allowed)
    except UnresolvedHost:
        pass


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` with its host replaced by the checked ``address``; the Host header, and for https the
    server name for TLS (SNI and certificate check), still name the original host.

    The headers close the connection after the answer: a connection pool knows it by the address
    alone, and would send the next webhook on that address, under another name, over a TLS
    connection whose certificate was checked for this one."""
    parts: SplitResult = urlsplit(url)
    host = parts.hostname or ""
    userinfo, _, header_host = parts.netloc.rpartition("@")
    literal = f"[{address.replace('%', '%25')}]" if ":" in address else address
    netloc = (f"{userinfo}@" if userinfo else "") + literal + ("" if parts.port is None else f":{parts.port}")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"Host": header_host, "Connection": "close"}, extensions
