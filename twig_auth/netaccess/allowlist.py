"""IP parsing and CIDR allowlist matching: pure Python, no ORM, no Django.

:func:`parse_ip` is the one address parser of twig_auth: it accepts what proxies and sockets really send
(surrounding whitespace, ``[v6]``, ``[v6]:port``, ``v4:port``) and folds IPv4-mapped IPv6
(``::ffff:192.0.2.1``) into plain IPv4, so one client never has two spellings. Anything else is ``None``.

:func:`compile_allowlist` parses the ranges once into sorted, merged integer intervals per address family;
:meth:`Allowlist.allows` is then one ``bisect`` per check, whatever the number of ranges.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_ADDRESS_TEXT = 64  # longer than any address with brackets and a port: refused unparsed
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_ALL_V4 = ipaddress.IPv4Network("0.0.0.0/0")


def parse_ip(text: object) -> IPAddress | None:
    """Return the address in ``text``, or ``None`` when it is not exactly one valid IP address.

    Accepted: ``192.0.2.1``, ``192.0.2.1:8080``, ``2001:db8::1``, ``[2001:db8::1]``, ``[2001:db8::1]:443``,
    with surrounding whitespace. IPv4-mapped IPv6 becomes IPv4. Refused: empty text, host names,
    zone ids (``fe80::1%eth0``), leading-zero octets, and anything longer than 64 characters.
    """
    if not isinstance(text, str):
        return None
    value = text.strip()
    if not value or len(value) > MAX_ADDRESS_TEXT or "%" in value:
        return None
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1:] if end > 0 else ""
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two colons
        host, _, port = value.partition(":")
        if not port.isdigit():
            return None
        value = host
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalize_ip(text: object) -> str | None:
    """Return the canonical text of the address in ``text`` (see :func:`parse_ip`), or ``None``."""
    address = parse_ip(text)
    return None if address is None else str(address)


def parse_network(text: object) -> IPNetwork:
    """Parse one CIDR range (host bits allowed, as in ``10.0.0.5/24``); raise ``ValueError`` with a clear message."""
    if isinstance(text, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return text
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a CIDR range; use a string such as \"192.168.1.0/24\"")
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not a valid IPv4 or IPv6 CIDR range") from None


def _intervals(networks: Iterable[IPNetwork]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sort and merge networks into disjoint ``[start, end]`` intervals, returned as two parallel tuples."""
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in networks)
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(s for s, _ in merged), tuple(e for _, e in merged)


def _contains(starts: tuple[int, ...], ends: tuple[int, ...], value: int) -> bool:
    index = bisect_right(starts, value) - 1
    return index >= 0 and value <= ends[index]


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Compiled CIDR ranges. Build it with :func:`compile_allowlist`."""

    v4_starts: tuple[int, ...]
    v4_ends: tuple[int, ...]
    v6_starts: tuple[int, ...]
    v6_ends: tuple[int, ...]
    empty: bool

    def allows(self, ip: object) -> bool:
        """Whether ``ip`` falls in one of the ranges. An empty list allows everything (even garbage);
        a non-empty one refuses an address that does not parse."""
        if self.empty:
            return True
        address = parse_ip(ip)
        if address is None:
            return False
        if address.version == 4:
            return _contains(self.v4_starts, self.v4_ends, int(address))
        return _contains(self.v6_starts, self.v6_ends, int(address))

    __contains__ = allows


def compile_allowlist(cidrs: Iterable[str | IPNetwork]) -> Allowlist:
    """Parse ``cidrs`` once into an :class:`Allowlist`; raise ``ValueError`` naming the first bad range.

    IPv4-mapped IPv6 ranges (``::ffff:10.0.0.0/104``) are stored as the IPv4 ranges they denote, since
    :func:`parse_ip` reports mapped clients as IPv4; an IPv6 range that contains the whole mapped block
    (such as ``::/0``) therefore also covers all of IPv4.
    """
    if isinstance(cidrs, str):
        raise ValueError("expected a list of CIDR ranges, not one string")
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    count = 0
    for item in cidrs:
        network = parse_network(item)
        count += 1
        if isinstance(network, ipaddress.IPv4Network):
            v4.append(network)
            continue
        v6.append(network)
        if network.prefixlen >= _MAPPED.prefixlen and network.subnet_of(_MAPPED):
            first = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
            v4.append(ipaddress.IPv4Network((first, network.prefixlen - _MAPPED.prefixlen)))
        elif network.supernet_of(_MAPPED):
            v4.append(_ALL_V4)
    v4_starts, v4_ends = _intervals(v4)
    v6_starts, v6_ends = _intervals(v6)
    return Allowlist(v4_starts, v4_ends, v6_starts, v6_ends, empty=count == 0)
