"""TXT lookups for domain verification, through dnspython, against the configured nameservers.

Kept apart from :mod:`twig_auth.sso.domains` so the workflow reads without resolver details, and so
dnspython (the ``sso`` extra) is imported only when a domain is actually checked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

TIMEOUT_SECONDS = 3.0


class DnsLookupFailed(Exception):
    """The TXT lookup gave no usable answer; ``reason`` is ``nxdomain``, ``no_txt``, ``timeout`` or ``error``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Nameserver:
    ip: str
    port: int = 53


def parse_nameserver(value: object) -> Nameserver:
    """Parse ``"ip"``, ``"ip:port"`` or ``"[ipv6]:port"``; a bare IPv6 address has no port."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a nameserver address")
    text = value.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not a nameserver address")
        port = rest[1:] or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address (a hostname cannot name the nameserver)") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} has an invalid port")
    return Nameserver(ip, int(port))


def txt_values(name: str, *, nameservers: list[str] | None = None, timeout: float = TIMEOUT_SECONDS) -> list[str]:
    """Return every TXT record at ``name``, each record's character-strings joined (long values are split in
    255-byte pieces on the wire). Raise :class:`DnsLookupFailed` when there is no usable answer."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=nameservers is None)
    if nameservers is not None:
        parsed = [parse_nameserver(n) for n in nameservers]
        resolver.nameservers = [n.ip for n in parsed]
        resolver.nameserver_ports = {n.ip: n.port for n in parsed}
    resolver.timeout = timeout
    resolver.lifetime = timeout
    try:
        answer = resolver.resolve(name, "TXT", search=False)
    except dns.resolver.NXDOMAIN:
        raise DnsLookupFailed("nxdomain", f"{name} does not exist in DNS. Add the TXT record, wait for it to "
                                          "propagate, then try again.") from None
    except dns.resolver.NoAnswer:
        raise DnsLookupFailed("no_txt", f"{name} has no TXT record. Add it, then try again.") from None
    except dns.exception.Timeout:
        raise DnsLookupFailed("timeout", f"DNS did not answer for {name} within {timeout:g} seconds. "
                                         "Try again in a moment.") from None
    except dns.exception.DNSException as exc:  # NoNameservers (SERVFAIL, REFUSED), malformed answers
        raise DnsLookupFailed("error", f"DNS lookup of {name} failed ({type(exc).__name__}). "
                                       "Try again in a moment.") from None
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]
