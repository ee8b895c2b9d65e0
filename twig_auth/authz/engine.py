"""The policy engine: a :class:`PolicySet` compiled once, indexed by (resource, action), and its decisions.

Semantics (Cedar-like, deny overrides):

1. The candidates of a request are the policies whose resource pattern covers the resource (``*``, the
   type wildcard ``agent:*``, or the exact ``agent:agent-123``) and whose action is the action or ``*``.
2. If any candidate ``deny`` has all its conditions holding, the decision is ``deny``; its ids are every
   such deny policy.
3. Else if any candidate ``allow`` has all its conditions holding, the decision is ``allow`` (ids: every
   such allow policy).
4. Else there is no policy decision (``effect`` None): the caller falls back to roles and grants.

Cost: a decision makes at most two memo lookups and one set lookup (the memo entry is merged from six index
buckets the first time a (type, id-or-*, action) is asked) and evaluates only its candidates, so it does not
grow with the size of the set. A ``PolicySet`` never changes after it is built (the memo is a cache); reload
by building a new one and swapping the reference (an atomic assignment: no request sees a half-loaded set).
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from twig_auth.authz.attributes import Attributes
from twig_auth.authz.policy_language import CompiledPolicy, ConditionCache, compile_policy
from twig_auth.exceptions import InvalidInput

ALLOW: Final = "allow"
DENY: Final = "deny"
MEMO_LIMIT: Final = 200_000  # past this many (type, id, action) keys, merge buckets per call instead of caching
REASON_POLICIES: Final = 5  # a "no decision" reason names at most this many policies that did not hold

Candidates = tuple[tuple[Any, CompiledPolicy], ...]  # (test, policy) pairs in policy order


@dataclass(frozen=True, slots=True)
class Trace:
    """How one candidate policy fared: whether its conditions all held and a sentence saying why."""

    policy_id: str
    effect: str
    held: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of :meth:`PolicySet.decide`.

    ``effect`` is ``"allow"``, ``"deny"`` or None (no policy decides); ``policy_ids`` are the deciding
    policies. ``reason`` and ``traces()`` are computed on demand from the candidates, for "explain" and
    the ``AUTHORIZATION_DENIED`` audit event.
    """

    effect: str | None
    policy_ids: tuple[str, ...]
    action: str
    resource_type: str
    resource_id: str
    denies: Candidates = field(default=(), repr=False, compare=False)
    allows: Candidates = field(default=(), repr=False, compare=False)
    attributes: Attributes | None = field(default=None, repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW

    @property
    def denied(self) -> bool:
        return self.effect == DENY

    @property
    def resource(self) -> str:
        return f"{self.resource_type}:{self.resource_id}"

    @property
    def candidates(self) -> tuple[CompiledPolicy, ...]:
        """Every policy whose resource and action cover the request: denies first, each in policy order."""
        return tuple(p for _, p in self.denies + self.allows)

    def traces(self) -> tuple[Trace, ...]:
        """Return how every candidate fared, denies first."""
        assert self.attributes is not None
        return tuple(_trace(p, self.attributes) for p in self.candidates)

    @property
    def reason(self) -> str:
        """Return one human sentence: which policies decided and why, or why none did."""
        on = f'"{self.action}" on {self.resource}'
        if self.effect is not None:
            verb = "denies" if self.effect == DENY else "allows"
            parts = [t for t in self.traces() if t.held and t.effect == self.effect]
            return "; ".join(f'policy "{t.policy_id}" {verb} {on}: {t.detail}' for t in parts)
        if not self.denies and not self.allows:
            return f"no policy applies to {on}"
        traces = self.traces()
        shown = "; ".join(f'policy "{t.policy_id}" ({t.effect}) does not hold: {t.detail}'
                          for t in traces[:REASON_POLICIES])
        more = f"; and {len(traces) - REASON_POLICIES} more" if len(traces) > REASON_POLICIES else ""
        return f"no policy decides {on}: {shown}{more}"


def _trace(policy: CompiledPolicy, attributes: Attributes) -> Trace:
    if not policy.conditions:
        return Trace(policy.id, policy.effect, True, "it has no conditions")
    details = []
    for condition in policy.conditions:
        held, detail = condition.explain(attributes)
        if not held:
            return Trace(policy.id, policy.effect, False, detail)
        details.append(detail)
    return Trace(policy.id, policy.effect, True, "; ".join(details))


class PolicySet:
    """An immutable, indexed set of compiled policies.

    Build with :meth:`compile` from ``(id, document)`` pairs, or from already compiled policies. Ask with
    :meth:`decide`. Iterating yields the policies in the order given.
    """

    def __init__(self, policies: Iterable[CompiledPolicy] = ()) -> None:
        self._policies: tuple[CompiledPolicy, ...] = tuple(policies)
        self._by_id: dict[str, CompiledPolicy] = {p.id: p for p in self._policies}
        if len(self._by_id) != len(self._policies):
            raise ValueError("duplicate policy ids")
        buckets: dict[tuple[str, str, str], list[tuple[int, CompiledPolicy]]] = {}
        exact: set[tuple[str, str]] = set()
        for i, p in enumerate(self._policies):
            rtype, rid = p.resource_type, p.resource_id
            key = (rtype, rid, p.action)
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = [(i, p)]
            else:
                bucket.append((i, p))
            if rid != "*":
                exact.add((rtype, rid))
        self._buckets = buckets
        self._exact = exact
        self._memo: dict[tuple[str, str, str], tuple[Candidates, Candidates]] = {}

    @classmethod
    def compile(cls, documents: Iterable[tuple[str, Any]], *,
                resource_types: Mapping[str, Collection[str]] | None = None) -> PolicySet:
        """Validate and compile every ``(id, document)`` pair; raise :class:`InvalidInput` naming every
        problem of every policy (``policies.<id>.policy.conditions.0.user.role``) and duplicate ids."""
        compiled: list[CompiledPolicy] = []
        errors: dict[str, list[str]] = {}
        seen: set[str] = set()
        cache: ConditionCache = {}
        # A build makes a dozen objects per policy and every one of them survives: the cyclic collector
        # would only re-scan the growing heap, over and over (4x the build time at 10 000 policies).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for policy_id, document in documents:
                pid = str(policy_id)
                if pid in seen:
                    errors[f"policies.{pid}"] = ["Duplicate policy id."]
                    continue
                seen.add(pid)
                try:
                    compiled.append(compile_policy(pid, document, resource_types=resource_types, cache=cache))
                except InvalidInput as exc:
                    errors.update({f"policies.{pid}.{path}": messages for path, messages in exc.errors.items()})
            if errors:
                raise InvalidInput(errors)
            return cls(compiled)
        finally:
            if collecting:
                gc.enable()

    def __len__(self) -> int:
        return len(self._policies)

    def __iter__(self) -> Iterator[CompiledPolicy]:
        return iter(self._policies)

    def get(self, policy_id: str) -> CompiledPolicy | None:
        """Return the policy with this id, or None."""
        return self._by_id.get(policy_id)

    def candidates(self, resource_type: str, resource_id: str, action: str) -> tuple[CompiledPolicy, ...]:
        """Return the policies covering (resource, action), conditions aside: denies first, in policy order."""
        denies, allows = self._lookup(resource_type, resource_id, action)
        return tuple(p for _, p in denies + allows)

    def decide(self, attributes: Attributes, action: str) -> Decision:
        """Return the decision for doing ``action`` to the resource described by ``attributes``."""
        rtype, rid = attributes.resource_type, attributes.resource_id
        denies, allows = self._lookup(rtype, rid, action)
        if denies:
            held = tuple(p.id for test, p in denies if test(attributes))
            if held:
                return Decision(DENY, held, action, rtype, rid, denies, allows, attributes)
        if allows:
            held = tuple(p.id for test, p in allows if test(attributes))
            if held:
                return Decision(ALLOW, held, action, rtype, rid, denies, allows, attributes)
        return Decision(None, (), action, rtype, rid, denies, allows, attributes)

    def _lookup(self, rtype: str, rid: str, action: str) -> tuple[Candidates, Candidates]:
        key = (rtype, rid, action)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        if (rtype, rid) not in self._exact:
            # ids without a policy of their own share one memo entry per (type, action): bounded memory
            key = (rtype, "*", action)
            hit = self._memo.get(key)
            if hit is not None:
                return hit
        hit = self._merge(rtype, rid, action)
        if len(self._memo) < MEMO_LIMIT:
            self._memo[key] = hit
        return hit

    def _merge(self, rtype: str, rid: str, action: str) -> tuple[Candidates, Candidates]:
        get = self._buckets.get
        found: list[tuple[int, CompiledPolicy]] = []
        keys = {(rtype, rid, action), (rtype, rid, "*"), (rtype, "*", action), (rtype, "*", "*"),
                ("*", "*", action), ("*", "*", "*")}  # a set: a literal "*" in the request must not count twice
        for key in keys:
            found.extend(get(key, ()))
        found.sort(key=lambda pair: pair[0])
        denies = tuple((p.test, p) for _, p in found if p.effect == DENY)
        allows = tuple((p.test, p) for _, p in found if p.effect == ALLOW)
        return denies, allows
