"""The ABAC policy language: validate a policy document, and compile it into a :class:`CompiledPolicy`.

A document (the contract's shape)::

    {"policy": {"resource": "agent:agent-123" | "agent:*" | "*", "action": "use" | "*",
                "effect": "allow" | "deny",
                "conditions": [{"user.role": "manager"}, {"time.hour": {">=": 9, "<": 17}}],
                "timezone": "Europe/Berlin", "description": "…"}}

Conditions are ANDed (none: the policy always applies). Each names one attribute (see
:mod:`twig_auth.authz.attributes`); a scalar means equality, an object holds one or more operators that
must all hold: ``==``, ``!=``, ``in``, ``not_in``, ``>=``, ``<=``, ``>``, ``<``, ``contains``, ``cidr``,
``not_cidr``.
On a set attribute (``user.groups``, ``resource.tags``) ``contains`` asks for one member, ``in`` for at
least one of a list, ``not_in`` for none of it. A missing attribute makes its condition false, whatever
the operator (``!=`` and ``not_in`` included). ``time.*`` is read in the policy's ``timezone``, else the
org's. Comparing values of different types (``"9" < 10``) is false, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, NamedTuple

from twig_auth.authz import attributes as attrs
from twig_auth.authz.attributes import ANY, KNOWN, MISSING, SET, Attributes, Kind
from twig_auth.exceptions import InvalidInput

MAX_CONDITIONS: Final = 32
MAX_DESCRIPTION: Final = 500

EQ_OPS: Final = ("==", "!=", "in", "not_in")
ORDER_OPS: Final = attrs.ORDER_OPS
OPERATORS: Final = (*EQ_OPS, *ORDER_OPS, "contains", "cidr", "not_cidr")
OPS_BY_KIND: Final[dict[str, tuple[str, ...]]] = {
    "string": (*EQ_OPS, "contains"), "email": (*EQ_OPS, "contains"), "int": (*EQ_OPS, *ORDER_OPS),
    "date": (*EQ_OPS, *ORDER_OPS), "bool": ("==", "!="), "ip": (*EQ_OPS, "cidr", "not_cidr"),
    "set": ("contains", "in", "not_in"), "any": (*EQ_OPS, *ORDER_OPS, "contains"),
}
POLICY_FIELDS: Final = ("resource", "action", "effect", "conditions", "timezone", "description")
_FIELD_SET: Final = frozenset(POLICY_FIELDS)
_SCALAR_TYPES: Final = frozenset((str, int, float, bool))
RESOURCE_RE = re.compile(r"^([a-z][a-z0-9_-]{0,63}):(\*|[^\s*]{1,128})$")
ACTION_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MEMBER_ATTR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")

Operand = tuple[str, Any, Any]  # operator, JSON value (normalized), runtime value
# One build's memo, keys tagged by what they hold: ("is"|"ops", …) a condition -> (normalized, Condition);
# ("head", …) action/effect/time zone -> (fields, errors); ("all", ids…) conditions -> (conditions, test).
ConditionCache = dict[Any, Any]


class Condition(NamedTuple):
    """One compiled condition: ``test(attributes)`` is True when every operator holds."""

    attribute: str
    checks: tuple[tuple[str, Any, Callable[[Any], bool]], ...]  # (operator, JSON operand, predicate)
    read: Callable[[Attributes], Any]
    test: Callable[[Attributes], bool]

    def explain(self, attributes: Attributes) -> tuple[bool, str]:
        """Return whether the condition holds and a sentence saying why (the first failing operator)."""
        value = self.read(attributes)
        if value is MISSING:
            return False, f"{self.attribute} is missing"
        shown = attrs.show(value)
        for op, operand, check in self.checks:
            if not check(value):
                return False, f"{self.attribute} {shown} {_PHRASES[op][1]} {attrs.show(operand)}"
        if all(op == "==" for op, _, _ in self.checks):
            return True, f"{self.attribute} is {shown}"
        held = " and ".join(f"{_PHRASES[op][0]} {attrs.show(operand)}" for op, operand, _ in self.checks)
        return True, f"{self.attribute} {shown} {held}"


class CompiledPolicy(NamedTuple):
    """A policy ready to evaluate. ``resource_type``/``resource_id``/``action`` are ``"*"`` when wildcard;
    ``test(attributes)`` is True when every condition holds; ``document`` is the normalized document."""

    id: str
    effect: str
    resource_type: str
    resource_id: str
    action: str
    conditions: tuple[Condition, ...]
    test: Callable[[Attributes], bool]
    timezone: str | None
    document: dict[str, Any]

    @property
    def resource(self) -> str:
        """The resource pattern as written: ``*``, ``agent:*`` or ``agent:agent-123``."""
        return "*" if self.resource_type == "*" else f"{self.resource_type}:{self.resource_id}"

    def matches(self, resource_type: str, resource_id: str, action: str) -> bool:
        """Return True when the policy's resource and action patterns cover the request (conditions aside)."""
        return ((self.resource_type == "*" or (self.resource_type == resource_type
                                               and self.resource_id in ("*", resource_id)))
                and self.action in ("*", action))


def validate_policy(document: Any, *, resource_types: Mapping[str, Collection[str]] | None = None) -> dict[str, Any]:
    """Check a policy document and return it normalized; raise :class:`InvalidInput` naming every problem.

    Paths are dotted: ``policy.effect``, ``policy.conditions.2.time.hour``. ``resource_types`` (type → its
    actions), when given, also refuses unknown resource types and actions. Normalized: ``conditions``
    always present, ``{"==": x}`` written as the scalar ``x``, emails lower-cased, CIDRs as networks,
    duplicates dropped from ``in``/``not_in`` lists.
    """
    normalized, _, errors = _parse(document, resource_types, None)
    if errors:
        raise InvalidInput(errors)
    return normalized


def compile_policy(policy_id: str, document: Any, *, resource_types: Mapping[str, Collection[str]] | None = None,
                   cache: ConditionCache | None = None) -> CompiledPolicy:
    """Validate ``document`` and return it compiled; raise :class:`InvalidInput` as :func:`validate_policy`.

    ``cache``, a dict shared by the calls of one build, lets identical conditions (same attribute, operand
    and time zone) be validated and compiled once; :meth:`PolicySet.compile` passes one.
    """
    if cache is None:
        cache = {}
    normalized, conditions, errors = _parse(document, resource_types, cache)
    if errors:
        raise InvalidInput(errors)
    body = normalized["policy"]
    rtype, _, rid = body["resource"].partition(":")
    # policies made from one template share their conditions, and so their combined test; the entry keeps
    # its conditions alive, so no other object can take one of the ids in its key while the cache lives
    combo = ("all", *map(id, conditions))
    hit = cache.get(combo)
    if hit is None:
        hit = cache[combo] = (conditions, _all(conditions))
    test = hit[1]
    return CompiledPolicy(policy_id if type(policy_id) is str else str(policy_id), body["effect"], rtype,
                          rid or "*", body["action"], conditions, test, body.get("timezone"), normalized)


def _compile_condition(attribute: str, kind: Kind, operands: list[Operand], tz: str | None) -> Condition:
    read = attrs.getter(attribute, tz)
    checks = tuple((op, json_value, attrs.predicate(kind.name, op, runtime)) for op, json_value, runtime in operands)
    if len(checks) == 1:
        check = checks[0][2]

        def test(a: Attributes) -> bool:
            v = read(a)
            return v is not MISSING and check(v)
    else:
        fns = tuple(c[2] for c in checks)

        def test(a: Attributes) -> bool:
            v = read(a)
            if v is MISSING:
                return False
            for fn in fns:  # noqa: SIM110 - a plain loop: all() over a generator costs twice as much here
                if not fn(v):
                    return False
            return True
    return Condition(attribute, checks, read, test)


def _always(a: Attributes) -> bool:
    return True


def _all(conditions: tuple[Condition, ...]) -> Callable[[Attributes], bool]:
    tests = [c.test for c in conditions]
    n = len(tests)
    if n == 0:
        return _always
    if n == 1:
        return tests[0]
    if n == 2:
        t1, t2 = tests
        return lambda a: t1(a) and t2(a)
    if n == 3:
        t1, t2, t3 = tests
        return lambda a: t1(a) and t2(a) and t3(a)

    def test(a: Attributes) -> bool:
        for t in tests:  # noqa: SIM110 - as above
            if not t(a):
                return False
        return True
    return test


# --- validation -------------------------------------------------------------------------------------------

def _parse(document: Any, resource_types: Mapping[str, Collection[str]] | None, cache: ConditionCache | None
           ) -> tuple[dict[str, Any], tuple[Condition, ...], dict[str, list[str]]]:
    """Validate; with a ``cache`` (compiling) also compile the conditions."""
    errors: dict[str, list[str]] = {}
    if type(document) is not dict:
        return {}, (), {"non_field_errors": ['Expected a JSON object such as {"policy": {...}}.']}
    body = document.get("policy")
    if len(document) != 1 or type(body) is not dict:
        for key in document:
            if key != "policy":
                errors[str(key)[:64]] = ['Unknown field; the document holds one "policy" object.']
        if type(body) is not dict:
            errors["policy"] = ["This field is required." if body is None else "Must be an object."]
            return {}, (), errors
    if not _FIELD_SET.issuperset(body):
        for key in body:
            if key not in _FIELD_SET:
                errors[f"policy.{str(key)[:64]}"] = [f"Unknown field; a policy has {', '.join(POLICY_FIELDS)}."]
    resource = body.get("resource")
    rtype, problem = _resource(resource, resource_types)
    if problem:
        errors["policy.resource"] = [problem]
    tz = body.get("timezone")
    # action, effect and time zone repeat across policies: check each combination once per build
    head_key = ("head", rtype, body.get("action"), body.get("effect"), tz, "timezone" in body)
    try:
        head_fields, head_errors = cache[head_key]  # type: ignore[index]
    except (KeyError, TypeError):  # not seen yet, no cache, or an unhashable value
        head_fields, head_errors = _head(*head_key[1:], resource_types)
        if cache is not None and not head_errors:
            cache[head_key] = head_fields, head_errors
    out: dict[str, Any] = {"resource": resource, **head_fields} if not problem else dict(head_fields)
    if head_errors:
        errors.update(head_errors)
    if "description" in body:
        d = body["description"]
        if isinstance(d, str) and len(d) <= MAX_DESCRIPTION:
            out["description"] = d
        else:
            errors["policy.description"] = [f"Must be text of at most {MAX_DESCRIPTION} characters."]
    conditions = body.get("conditions", [])
    normalized: list[Any] = []
    compiled: list[Condition] = []
    out["conditions"] = normalized
    if type(conditions) is not list:
        errors["policy.conditions"] = ['Must be a list of conditions, such as [{"user.role": "manager"}].']
    elif len(conditions) > MAX_CONDITIONS:
        errors["policy.conditions"] = [f"At most {MAX_CONDITIONS} conditions."]
    else:
        keyed = cache is not None and (tz is None or type(tz) is str)
        for i, condition in enumerate(conditions):
            key = _cache_key(condition, tz) if keyed else None
            hit = cache.get(key) if key is not None else None  # type: ignore[union-attr]
            if hit is None:
                hit = _parse_condition(condition, i, errors, tz if cache is not None else False)
                if hit is not None and key is not None:
                    cache[key] = hit  # type: ignore[index]
            if hit is not None:
                normalized.append(hit[0])
                compiled.append(hit[1])
    return {"policy": out}, tuple(compiled), errors


def _head(rtype: str | None, action: Any, effect: Any, tz: Any, has_tz: bool,
          resource_types: Mapping[str, Collection[str]] | None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Check a policy's action, effect and time zone; return (normalized fields, errors)."""
    fields: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    problem = _action(action, rtype, resource_types)
    if problem:
        errors["policy.action"] = [problem]
    else:
        fields["action"] = action
    if effect == "allow" or effect == "deny":
        fields["effect"] = effect
    else:
        errors["policy.effect"] = ["This field is required." if effect is None else 'Must be "allow" or "deny".']
    if has_tz:
        problem = attrs.timezone_problem(tz)
        if problem:
            errors["policy.timezone"] = [problem]
        else:
            fields["timezone"] = tz
    return fields, errors


def _cache_key(condition: Any, tz: str | None) -> Any:
    """Return a hashable key of a condition as written, types included so that ``true`` and ``1`` differ
    (None when it holds anything but JSON scalars and lists of them)."""
    if type(condition) is not dict or len(condition) != 1:
        return None
    ((attribute, spec),) = condition.items()
    if type(spec) is not dict:
        return ("is", tz, attribute, type(spec), spec) if type(spec) in _SCALAR_TYPES else None
    parts: list[Any] = ["ops", tz, attribute]
    for op, v in spec.items():
        t = type(v)
        if t is list:
            types = tuple(map(type, v))
            if not _SCALAR_TYPES.issuperset(types):
                return None
            parts += (op, types, tuple(v))
        elif t in _SCALAR_TYPES:
            parts += (op, t, v)
        else:
            return None
    return tuple(parts)


def _put(errors: dict[str, list[str]], path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def _resource(value: Any, resource_types: Mapping[str, Collection[str]] | None) -> tuple[str | None, str | None]:
    """Return (resource type or "*", None) for a valid pattern, else (None, the problem)."""
    if value == "*":
        return "*", None
    if value is None:
        return None, "This field is required."
    match = RESOURCE_RE.match(value) if type(value) is str else None
    if match is None:
        rtype = value.partition(":")[0] if type(value) is str else ""
        if "*" in str(value) and RESOURCE_RE.match(f"{rtype}:*"):
            return None, f'Wildcards match a whole id only: use "{rtype}:*".'
        return None, 'Must be "*", "<type>:*" or "<type>:<id>", such as "agent:agent-123".'
    rtype = match.group(1)
    if resource_types is not None and rtype not in resource_types:
        return None, f"Unknown resource type {attrs.quote(rtype)}; known types: {', '.join(sorted(resource_types))}."
    return rtype, None


def _action(value: Any, rtype: str | None, resource_types: Mapping[str, Collection[str]] | None) -> str | None:
    if value == "*":
        return None
    if value is None:
        return "This field is required."
    if type(value) is not str or not ACTION_RE.match(value):
        return 'Must be an action name such as "use", or "*" for every action.'
    if resource_types is None or rtype is None:
        return None
    actions = resource_types[rtype] if rtype != "*" else {a for acts in resource_types.values() for a in acts}
    if value not in actions:
        where = f"of {rtype}" if rtype != "*" else "of any resource type"
        return f"{attrs.quote(value)} is not an action {where}; the actions are: {', '.join(sorted(actions))}."
    return None


def _attribute_problem(attribute: str) -> str | None:
    namespace, _, name = attribute.partition(".")
    if namespace == "user":
        return None if MEMBER_ATTR_RE.match(name) else ("Member attribute names are letters, digits, _ and -, "
                                                        'such as "user.department".')
    if namespace in attrs.CLOSED_NAMESPACES:
        return (f"Unknown attribute {attrs.quote(attribute)}; {namespace} attributes are "
                f"{', '.join(attrs.CLOSED_NAMESPACES[namespace])}.")
    return f"Unknown attribute {attrs.quote(attribute)}; attributes start with user., resource., time. or request."


def _parse_condition(condition: Any, i: int, errors: dict[str, list[str]], tz: str | None | bool
                     ) -> tuple[Any, Condition | None] | None:
    """Return (normalized condition, compiled condition or None when ``tz`` is False), or None on errors."""
    if type(condition) is not dict or len(condition) != 1:
        _put(errors, f"policy.conditions.{i}", 'Each condition is an object naming one attribute, such as '
                                               '{"user.role": "manager"}; put each attribute in a condition of '
                                               "its own.")
        return None
    ((attribute, spec),) = condition.items()
    attribute = str(attribute)
    kind = KNOWN.get(attribute)
    if kind is None:
        problem = _attribute_problem(attribute)
        if problem:
            _put(errors, f"policy.conditions.{i}.{attribute[:64]}", problem)
            return None
        kind = ANY
    allowed = OPS_BY_KIND[kind.name]
    single = type(spec) is not dict
    items = (("==", spec),) if single else spec.items()
    operands: list[Operand] = []
    problems: list[str] = []
    for op, raw in items:
        if op not in OPERATORS:
            problems.append(f"Unknown operator {attrs.quote(op, 16)}; use one of {', '.join(OPERATORS)}.")
        elif op not in allowed:
            hint = ' (use {"contains": "<name>"} to ask for one member)' if kind is SET and op == "==" else ""
            problems.append(f"{attribute} does not take {attrs.quote(op)}{hint}; use one of {', '.join(allowed)}.")
        else:
            result = attrs.parse_operand(attribute, kind, op, raw)
            if type(result) is str:
                problems.append(result if single else f'"{op}" {result[0].lower()}{result[1:]}')
            else:
                operands.append((op, *result))
    if not single and not spec:
        problems.append(f"Give at least one operator: {', '.join(allowed)}.")
    if problems:
        errors.setdefault(f"policy.conditions.{i}.{attribute[:64]}", []).extend(problems)
        return None
    if single:
        normalized = {attribute: operands[0][1]}
    else:
        normalized = {attribute: {op: value for op, value, _ in operands}}
        if len(operands) == 1 and operands[0][0] == "==":
            normalized = {attribute: operands[0][1]}
    return normalized, (None if tz is False else _compile_condition(attribute, kind, operands, tz))  # type: ignore[arg-type]


_PHRASES: Final = {
    "==": ("is", "is not"), "!=": ("is not", "is"), "in": ("is in", "is not in"),
    "not_in": ("is not in", "is in"), ">=": (">=", "is not >="), "<=": ("<=", "is not <="), ">": (">", "is not >"),
    "<": ("<", "is not <"), "contains": ("contains", "does not contain"), "cidr": ("is within", "is not within"),
    "not_cidr": ("is outside", "is within"),
}
