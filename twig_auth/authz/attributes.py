"""The attributes a policy decision reads, and the catalogue of attribute names the policy language knows.

Four namespaces:

- ``user.*``: ``role``, ``id``, ``email``, ``email_domain``, ``groups`` (a set of group names), and any
  member attribute (``user.department`` …, free-form, from ``Membership.attributes``);
- ``resource.*``: ``type``, ``id``, ``owner``, ``tags`` (a set);
- ``request.*``: ``ip`` (IPv4 or IPv6), ``mfa`` (bool: a second factor was used);
- ``time.*``: ``hour`` (0–23), ``minute`` (0–59), ``weekday`` (ISO: Monday = 1 … Sunday = 7), ``date``
  (``YYYY-MM-DD``): the wall clock of one UTC instant in a time zone.

An :class:`Attributes` is built once per request and may be asked about many time zones: each zone's
``time.*`` values are computed on first use and kept. A value that is absent (or ``None``) reads as
:data:`MISSING`; the engine makes every condition on a missing value false, it never raises.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final
from zoneinfo import ZoneInfo

from twig_auth.orgs.roles import ROLE_RANK

NAMESPACES: Final = ("user", "resource", "request", "time")


class _Missing:
    """The value of an attribute the request does not carry (falsy, a singleton)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: one instance per kind
class Kind:
    """What values an attribute holds: ``name`` is one of ``string``, ``email``, ``int``, ``date``,
    ``bool``, ``ip``, ``set`` (of strings) or ``any`` (free-form member attributes); ``lo``/``hi`` bound ints."""

    name: str
    lo: int = 0
    hi: int = 0


STRING, EMAIL, DATE, BOOL, IP, SET, ANY = (Kind(n) for n in ("string", "email", "date", "bool", "ip", "set", "any"))

# Every attribute the language knows by name; any other ``user.<name>`` is a free-form member attribute.
KNOWN: Final[dict[str, Kind]] = {
    "user.role": STRING, "user.id": STRING, "user.email": EMAIL, "user.email_domain": EMAIL, "user.groups": SET,
    "resource.type": STRING, "resource.id": STRING, "resource.owner": STRING, "resource.tags": SET,
    "time.hour": Kind("int", 0, 23), "time.minute": Kind("int", 0, 59), "time.weekday": Kind("int", 1, 7),
    "time.date": DATE,
    "request.ip": IP, "request.mfa": BOOL,
}
CLOSED_NAMESPACES: Final = {ns: sorted(p.split(".", 1)[1] for p in KNOWN if p.startswith(ns + ".")) for ns in
                            ("resource", "request", "time")}
_TIME_READERS: Final[dict[str, Callable[[dt.datetime], Any]]] = {
    "hour": lambda t: t.hour, "minute": lambda t: t.minute, "weekday": lambda t: t.isoweekday(),
    "date": lambda t: t.date().isoformat(),
}


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None


class Attributes:
    """The request as policies see it. Build one per decision (or per request, for several decisions on
    the same resource): ``Attributes(user={...}, resource_type="agent", resource_id="agent-123",
    ip="10.0.0.5", mfa=True, now=clock.now(), timezone=org_timezone)``.

    ``user`` holds ``role``, ``id``, ``email``, ``groups`` and the member's own attributes; ``email`` is
    lower-cased and ``email_domain`` derived from it when absent. ``resource`` may add ``owner`` and
    ``tags``. ``now`` must be timezone-aware; ``timezone`` (IANA) is the org's, used for ``time.*`` in
    policies without a ``timezone`` of their own (an unknown zone makes ``time.*`` missing).
    """

    __slots__ = ("user", "resource", "request", "now", "timezone", "resource_type", "resource_id", "_times",
                 "_ip")

    def __init__(self, *, user: Mapping[str, Any] | None = None, resource_type: str, resource_id: str,
                 resource: Mapping[str, Any] | None = None, ip: str | None = None, mfa: bool | None = None,
                 now: dt.datetime, timezone: str = "UTC") -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware (UTC from the clock seam)")
        self.user = _normalize_user(user or {})
        res: dict[str, Any] = dict(resource) if resource else {}
        res["type"], res["id"] = resource_type, resource_id
        if res.get("tags") is not None:
            res["tags"] = _string_set(res["tags"])
        owner = res.get("owner")
        if owner is not None and type(owner) is not str:
            res["owner"] = str(owner)  # ids are opaque strings in policies; a pk may arrive as an int
        self.resource = res
        self.request: dict[str, Any] = {"ip": ip, "mfa": mfa}
        self.now = now
        self.timezone = timezone
        self.resource_type = resource_type
        self.resource_id = resource_id
        self._times: dict[str | None, dt.datetime | None] = {}
        self._ip: Any = MISSING

    def local_time(self, timezone: str | None = None) -> dt.datetime | None:
        """Return ``now`` on the wall clock of ``timezone`` (the org's when None), or None when the zone is
        unknown. Computed once per zone."""
        try:
            return self._times[timezone]
        except KeyError:
            zone = _zone(timezone or self.timezone)
            local = None if zone is None else self.now.astimezone(zone)
            self._times[timezone] = local
            return local

    def ip_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """Return ``request.ip`` parsed (IPv4-mapped IPv6 unwrapped), or None when absent or malformed."""
        if self._ip is MISSING:
            self._ip = parse_ip(self.request["ip"])
        return self._ip

    def get(self, path: str, timezone: str | None = None) -> Any:
        """Return the value of a dotted attribute (``time.*`` in ``timezone``), or :data:`MISSING`."""
        return getter(path, timezone)(self)


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Return ``value`` as an IP address (an IPv4-mapped IPv6 address as its IPv4 form), or None."""
    if not isinstance(value, str):
        return None
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _string_set(value: Any) -> frozenset[str] | _Missing:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return MISSING
    return frozenset(v for v in value if isinstance(v, str))


def _normalize_user(user: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(user)
    email = out.get("email")
    if isinstance(email, str):
        out["email"] = email = email.strip().lower()
        if out.get("email_domain") is None and "@" in email:
            out["email_domain"] = email.rsplit("@", 1)[1]
    if isinstance(out.get("email_domain"), str):
        out["email_domain"] = out["email_domain"].strip().lower()
    if out.get("groups") is not None:
        out["groups"] = _string_set(out["groups"])
    if out.get("id") is not None and type(out["id"]) is not str:
        out["id"] = str(out["id"])  # as resource.owner
    return out


def getter(path: str, timezone: str | None = None) -> Callable[[Attributes], Any]:
    """Return a function reading attribute ``path`` from an :class:`Attributes` (``MISSING`` when absent).

    ``path`` must be valid (see :data:`KNOWN`); ``time.*`` reads in ``timezone``, the org's when None.
    """
    namespace, name = path.split(".", 1)
    if namespace == "user":
        def read_user(a: Attributes) -> Any:
            v = a.user.get(name)
            return MISSING if v is None else v
        return read_user
    if namespace == "resource":
        def read_resource(a: Attributes) -> Any:
            v = a.resource.get(name)
            return MISSING if v is None else v
        return read_resource
    if path == "request.ip":
        def read_ip(a: Attributes) -> Any:
            v = a.ip_address()
            return MISSING if v is None else v
        return read_ip
    if path == "request.mfa":
        def read_mfa(a: Attributes) -> Any:
            v = a.request["mfa"]
            return v if isinstance(v, bool) else MISSING
        return read_mfa
    if namespace == "time" and name in _TIME_READERS:
        part = _TIME_READERS[name]

        def read_time(a: Attributes) -> Any:
            local = a.local_time(timezone)
            return MISSING if local is None else part(local)
        return read_time
    raise ValueError(f"unknown attribute {path!r}")


# --- operands ---------------------------------------------------------------------------------------------

MAX_LIST: Final = 100
MAX_STRING: Final = 256
ORDER_OPS: Final = (">=", "<=", ">", "<")
DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def timezone_problem(value: Any) -> str | None:
    """Return why ``value`` is not an IANA time zone name, or None."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return 'Must be a time zone name such as "Europe/Berlin".'
    try:
        ZoneInfo(value)
    except (ValueError, OSError, KeyError):
        return f"{quote(value)} is not a known time zone."
    return None


def parse_operand(attribute: str, kind: Kind, op: str, raw: Any) -> tuple[Any, Any] | str:
    """Return (normalized JSON value, runtime value) of the operand of ``op`` on ``attribute``, or what is
    wrong with it. Runtime values: a frozenset for ``in``/``not_in`` (a tuple on free-form attributes), a
    tuple of networks for ``cidr``, an address for ``request.ip``."""
    cidr = op in ("cidr", "not_cidr")
    if op == "in" or op == "not_in" or (cidr and type(raw) is list):
        if type(raw) is not list or not raw:
            return "Must be a non-empty list." if not cidr else "Must be a CIDR range or a non-empty list."
        if len(raw) > MAX_LIST:
            return f"At most {MAX_LIST} values."
        values, runtime, seen = [], [], set()
        for item in raw:
            one = _parse_value(attribute, kind, op, item)
            if type(one) is str:
                return f"{show(item)}: {one[0].lower()}{one[1:]}"
            key = typed_key(one[1]) if kind is ANY else one[1]
            if key not in seen:
                seen.add(key)
                values.append(one[0])
                runtime.append(one[1])
        # free-form operands stay a tuple: a frozenset would merge True with 1
        return values, (tuple(runtime) if cidr or kind is ANY else frozenset(runtime))
    one = _parse_value(attribute, kind, op, raw)
    if type(one) is str or not cidr:
        return one
    return one[0], (one[1],)


def _parse_value(attribute: str, kind: Kind, op: str, v: Any) -> tuple[Any, Any] | str:
    name = kind.name
    if op in ("cidr", "not_cidr"):
        try:
            if type(v) is not str:
                raise ValueError
            net = ipaddress.ip_network(v.strip(), strict=False)
        except ValueError:
            return 'Must be an IPv4 or IPv6 CIDR range such as "10.0.0.0/8".'
        return str(net), net
    if name in ("string", "email", "set"):
        if type(v) is not str or not v or len(v) > MAX_STRING:
            return f"Must be a non-empty string of at most {MAX_STRING} characters."
        if name == "email":
            v = v.strip().lower()
        elif attribute == "user.role" and op != "contains" and v not in ROLE_RANK:
            return f"Unknown role {quote(v, 32)}; roles are {', '.join(ROLE_RANK)}."
        return v, v
    if name == "int":
        if type(v) is not int:
            return "Must be a whole number."
        if not kind.lo <= v <= kind.hi:
            return f"Must be between {kind.lo} and {kind.hi}."
        return v, v
    if kind is DATE:
        try:
            if type(v) is not str or not DATE_RE.match(v):
                raise ValueError
            iso = dt.date.fromisoformat(v).isoformat()
        except ValueError:
            return 'Must be a date written YYYY-MM-DD, such as "2026-03-08".'
        return iso, iso
    if kind is BOOL:
        return (v, v) if type(v) is bool else "Must be true or false."
    if kind is IP:
        addr = parse_ip(v)
        return (str(addr), addr) if addr is not None else "Must be an IPv4 or IPv6 address."
    # free-form member attribute
    t = type(v)
    if t is str:
        return (v, v) if len(v) <= MAX_STRING else f"Must be at most {MAX_STRING} characters."
    if op in ORDER_OPS and t not in (int, float):
        return "Must be a number or a string."
    if t in (bool, int, float) and v == v and v not in (float("inf"), float("-inf")):
        return v, v
    return "Must be a string, a number, or true or false."


def quote(value: Any, limit: int = 64) -> str:
    """Quote a name from the input for a message (JSON quotes, cut to ``limit`` characters)."""
    return json.dumps(str(value)[:limit], ensure_ascii=False)


def show(value: Any) -> str:
    """Render a value for a reason: JSON-like, sets sorted, long lists cut."""
    if isinstance(value, frozenset | set | tuple | list):
        items = sorted(show(v) for v in value) if isinstance(value, frozenset | set) else [show(v) for v in value]
        return "[" + ", ".join(items[:5]) + (", …" if len(items) > 5 else "") + "]"
    if isinstance(value, bool | int | float | str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(str(value))


# --- comparisons -------------------------------------------------------------------------------------------

def typed_key(value: Any) -> tuple[str, Any]:
    """Return ``value`` tagged with its family (bool, number, string) so that ``True`` never equals ``1``."""
    if isinstance(value, bool):
        return "b", value
    if isinstance(value, int | float):
        return "n", value
    if isinstance(value, str):
        return "s", value
    return "o", None  # lists, dicts …: equal to nothing a policy can name


_CONTAINERS = (list, tuple, set, frozenset)


def predicate(kind: str, op: str, x: Any) -> Callable[[Any], bool]:
    """Return a test of one present attribute value of ``kind`` against operator ``op`` and operand ``x``.

    ``x`` is the runtime operand from the policy language (a frozenset for ``in``/``not_in``, a tuple of
    networks for ``cidr``, an address for ``request.ip``). Values the request carries in the wrong type
    make the test false; no test raises. ``int``, ``date``, ``ip``, ``bool`` and ``set`` values are made
    by :class:`Attributes` itself, so their tests skip type checks.
    """
    return _FACTORIES[kind][op](x)


def _free_form(op: str, x: Any) -> Callable[[Any], bool]:
    if op in ("in", "not_in"):
        keys = frozenset(typed_key(i) for i in x)
        if op == "in":
            return lambda v: typed_key(v) in keys
        return lambda v: (k := typed_key(v))[0] != "o" and k not in keys
    if op in (">=", "<=", ">", "<"):
        family = typed_key(x)[0]
        compare: Callable[[Any], bool] = {">=": lambda v: v >= x, "<=": lambda v: v <= x, ">": lambda v: v > x,
                                          "<": lambda v: v < x}[op]
        return lambda v: typed_key(v)[0] == family and compare(v)
    key = typed_key(x)
    if op == "==":
        return lambda v: typed_key(v) == key
    if op == "!=":
        return lambda v: (k := typed_key(v))[0] != "o" and k != key
    # contains: a substring of a string, or a member of a list
    return lambda v: ((isinstance(v, str) and isinstance(x, str) and x in v)
                      or (isinstance(v, _CONTAINERS) and any(typed_key(i) == key for i in v)))


# kind -> operator -> factory of the test; one closure per operator of a policy, made at compile time
_Factory = Callable[[Any], Callable[[Any], bool]]
_TEXT: dict[str, _Factory] = {
    "==": lambda x: lambda v: v == x,
    "!=": lambda x: lambda v: isinstance(v, str) and v != x,
    "in": lambda x: lambda v: isinstance(v, str) and v in x,
    "not_in": lambda x: lambda v: isinstance(v, str) and v not in x,
    "contains": lambda x: lambda v: isinstance(v, str) and x in v,
}
_ORDERED: dict[str, _Factory] = {
    "==": lambda x: lambda v: v == x, "!=": lambda x: lambda v: v != x,
    "in": lambda x: lambda v: v in x, "not_in": lambda x: lambda v: v not in x,
    ">=": lambda x: lambda v: v >= x, "<=": lambda x: lambda v: v <= x,
    ">": lambda x: lambda v: v > x, "<": lambda x: lambda v: v < x,
}
_FACTORIES: dict[str, dict[str, _Factory]] = {
    "string": _TEXT, "email": _TEXT, "int": _ORDERED, "date": _ORDERED,
    "ip": {**_ORDERED, "cidr": lambda x: lambda v: any(v in net for net in x),
           "not_cidr": lambda x: lambda v: not any(v in net for net in x)},
    "bool": {"==": lambda x: lambda v: v is x, "!=": lambda x: lambda v: v is not x},
    "set": {"contains": lambda x: lambda v: x in v, "in": lambda x: lambda v: not x.isdisjoint(v),
            "not_in": lambda x: lambda v: x.isdisjoint(v)},
    "any": {op: partial(_free_form, op) for op in ("==", "!=", "in", "not_in", ">=", "<=", ">", "<", "contains")},
}
