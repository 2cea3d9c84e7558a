"""Where a webhook may point: the operator's allow-list, so a branch admin cannot aim the node at itself.

A webhook makes the node send requests on a branch admin's behalf, from inside the company network. Without a
rule, a hook at ``http://127.0.0.1:<peer port>/`` or at a private service turns the node into a request forger
and, through its dead letters' error texts, into a port scanner (a red-team session did both). So:

- a target whose host is, or resolves to, a loopback, private, link-local, multicast, reserved or unspecified
  address is refused (400 ``target_not_allowed``) unless the operator allows it in node.toml::

      [webhooks]
      allow = ["10.20.0.0/16", "crm.internal.example"]   # networks (CIDR or one address) and host names

- the node's own API and peer listeners are refused whatever the allow-list says;
- the check runs at registration AND before every delivery (a name may resolve elsewhere later), and a refused
  delivery is a failed attempt whose error names only the rule, never a connection detail.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import urlsplit

from node.errors import NodeError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetNotAllowed(NodeError):
    """A webhook URL the node may not send to."""

    code = "target_not_allowed"
    http_status = 400


def parse_allow(entries: Iterable[str]) -> tuple[tuple[IpNetwork, ...], frozenset[str]]:
    """Split node.toml's ``[webhooks] allow`` into networks and host names (lower case)."""
    networks, names = [], set()
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return tuple(networks), frozenset(names)


def is_internal(address: IpAddress) -> bool:
    """True for an address a public receiver never has (loopback, private, link-local, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified)


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """The allow-list and the node's own listeners (host, port) that no hook may reach."""

    networks: tuple[IpNetwork, ...] = ()
    names: frozenset[str] = frozenset()
    own: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def from_allow(cls, allow: Iterable[str], own: Iterable[tuple[str, int]] = ()) -> "TargetPolicy":
        networks, names = parse_allow(allow)
        return cls(networks, names, frozenset(own))

    def with_own(self, host: str, port: int) -> "TargetPolicy":
        return TargetPolicy(self.networks, self.names, self.own | {(host, port)})

    async def check(self, url: str) -> None:
        """Raise ``TargetNotAllowed`` unless ``url`` may be sent to (resolving its host name)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await _resolve(host, port)
        for address in addresses:
            if any(p == port and (h in (str(address), host) or h in ("0.0.0.0", "::") and is_internal(address))
                   for h, p in self.own):  # a listener on every address is reached by any internal one
                raise TargetNotAllowed(f"url {url[:80]!r} reaches this node's own listener; expected a receiver "
                                       "outside the node")
        if host in self.names:
            return
        for address in addresses:
            if is_internal(address) and not any(address in net for net in self.networks):
                raise TargetNotAllowed(
                    f"url {url[:80]!r} reaches the internal address {address}; expected a public receiver, or "
                    "one the operator allows in node.toml [webhooks] allow = [\"<network or host>\"]")


async def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetNotAllowed(f"host {host[:60]!r} does not resolve ({type(exc).__name__}); expected a "
                               "receiver the node can reach") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
