"""The resource registry: which models take part in authorization, their actions and what each implies.

Any project model joins with :func:`register` (the reference project registers agents and data sources in its
``AppConfig.ready``; twig_auth registers groups itself)::

    register("agent", "workspace.Agent", actions=("view", "use", "edit", "manage", "deploy"),
             implies={"use": ["view"], "edit": ["use"], "manage": ["edit"]},
             owner_field="created_by", modifier_field="updated_by")

``implies`` is closed transitively: ``manage`` above implies ``edit``, ``use`` and ``view``. An action that
nothing implies and that implies nothing (``deploy``) is only ever held through an explicit grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps

RESOURCE_RE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class ResourceType:
    name: str
    model_label: str
    actions: tuple[str, ...]
    closure: Mapping[str, frozenset[str]] = field(repr=False)  # action -> every action it grants (itself included)
    org_field: str = "org"
    owner_field: str | None = None
    modifier_field: str | None = None
    tags_field: str | None = None

    @property
    def model(self) -> Any:
        return apps.get_model(self.model_label)

    def grants(self, held: str, wanted: str) -> bool:
        """Does holding ``held`` allow ``wanted``?"""
        return wanted in self.closure.get(held, frozenset())

    def holders_of(self, wanted: str) -> frozenset[str]:
        """Every action whose holder may do ``wanted`` (``wanted`` and the actions above it)."""
        return frozenset(a for a, granted in self.closure.items() if wanted in granted)


_types: dict[str, ResourceType] = {}


def _closure(actions: tuple[str, ...], implies: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    result: dict[str, frozenset[str]] = {}
    for action in actions:
        seen, todo = {action}, [action]
        while todo:
            for lower in implies.get(todo.pop(), ()):
                if lower not in actions:
                    raise ValueError(f"{action!r} implies unknown action {lower!r}")
                if lower not in seen:
                    seen.add(lower)
                    todo.append(lower)
        result[action] = frozenset(seen)
    return result


def register(name: str, model_label: str, *, actions: Iterable[str], implies: Mapping[str, Iterable[str]] | None = None,
             org_field: str = "org", owner_field: str | None = None, modifier_field: str | None = None,
             tags_field: str | None = None) -> ResourceType:
    """Register (or re-register, idempotently) a resource type; return it."""
    if not name or set(name) - RESOURCE_RE_CHARS:
        raise ValueError(f"resource type {name!r}: use lowercase letters, digits and underscores")
    acts = tuple(actions)
    if not acts or any(not a or set(a) - RESOURCE_RE_CHARS for a in acts):
        raise ValueError(f"resource type {name!r}: actions must be lowercase words")
    rtype = ResourceType(name, model_label, acts, _closure(acts, implies or {}), org_field, owner_field,
                         modifier_field, tags_field)
    _types[name] = rtype
    return rtype


def get(name: str) -> ResourceType | None:
    return _types.get(name)


def all_types() -> dict[str, ResourceType]:
    return dict(_types)


def for_model(model: Any) -> ResourceType | None:
    """The registered type of a model class or instance, or None."""
    label = model._meta.label
    return next((t for t in _types.values() if t.model_label == label), None)


def actions_by_type() -> dict[str, tuple[str, ...]]:
    """``{"agent": ("view", ...), ...}``: what the policy validator accepts."""
    return {name: t.actions for name, t in _types.items()}


def register_builtin() -> None:
    """twig_auth's own resource type: groups, whose grants are the group roles."""
    register("group", "twig_auth.Group", actions=("member", "manager", "admin"),
             implies={"manager": ["member"], "admin": ["manager"]})
