"""The shape shared by the page gates (MFA enrollment, IP allowlist): a middleware that looks at signed-in
members of an org on server-rendered pages and may answer instead of the view.

DRF views are skipped: their authentication classes apply the same rules and answer in JSON. A view is
exempt when it carries the gate's marker attribute (set by the gate's decorator) or its URL name is in
the gate's ``exempt_view_names``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.http import HttpRequest, HttpResponse

from twig_auth.orgs.active import current_membership

V = TypeVar("V", bound=Callable[..., Any])


def marker(attribute: str) -> Callable[[V], V]:
    """Return a decorator that marks a view with ``attribute`` (the gate then lets it through)."""

    def mark(view: V) -> V:
        setattr(view, attribute, True)
        return view

    return mark


def is_api_view(view_func: Any) -> bool:
    cls = getattr(view_func, "cls", None)
    return cls is not None and hasattr(cls, "authentication_classes")


class MemberPageGate:
    """Call :meth:`refuse` for a signed-in member's page request; its answer, if any, replaces the view."""

    exempt_attribute: ClassVar[str]
    exempt_view_names: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        user = getattr(request, "user", None)
        if not getattr(user, "is_authenticated", False):
            return None
        if getattr(view_func, self.exempt_attribute, False) or is_api_view(view_func):
            return None
        match = getattr(request, "resolver_match", None)
        if match is not None and match.view_name in self.exempt_view_names:
            return None
        membership = current_membership(request)
        if membership is None:
            return None
        return self.refuse(request, user, membership)

    def refuse(self, request: HttpRequest, user: Any, membership: Any) -> HttpResponse | None:
        raise NotImplementedError
