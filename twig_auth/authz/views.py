"""Settings → Access: grants, separation of duties, time windows, ABAC policies and "try it" (explain).

Admins of the active organization only; others get the same "Not allowed" page as the security settings.
Thin: a form, one service (or decision) call, a render. Policy changes ask for a recent second factor
(:func:`~twig_auth.mfa.guard.require_step_up`) once the document is known to be valid.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from twig_auth.authz import registry, services
from twig_auth.authz.decisions import explain, resolve_resource
from twig_auth.authz.forms import GrantForm, PolicyForm, SodRuleForm, TimeWindowForm, TryForm, pretty, type_label
from twig_auth.authz.matrix import Permission, has_permission
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.authz.pages import grant_rows, group_rows, kind_label, member_rows, step_rows
from twig_auth.authz.policy_language import validate_policy
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from twig_auth.mfa.guard import require_step_up
from twig_auth.orgs import policy as org_policy
from twig_auth.orgs.active import current_membership
from twig_auth.orgs.models import Group, Membership

T = "twig_auth/authz/"
STEP_UP_ACTION = "change access policies"
View = Callable[..., HttpResponse]


def admin_page(permission: Permission, message: str) -> Callable[[View], View]:
    """Let only members whose role holds ``permission`` in the active org in; pass their membership on."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = current_membership(request)
            if membership is None or not has_permission(membership.role, permission):
                return render(request, "twig_auth/usersessions/forbidden.html", {"message": message}, status=403)
            return view(request, membership, *args, **kwargs)

        return never_cache(login_required(wrapper))

    return decorate


ACCESS_ONLY = "Only admins of the organization can manage access."
POLICIES_ONLY = "Only admins of the organization can manage its access policies."
EXPLAIN_ONLY = "Only admins of the organization can ask why a member may or may not act."


def _tz(membership: Membership) -> str:
    return org_policy.effective(membership.org)["timezone"]


def _ctx(request: HttpRequest) -> RequestContext:
    return RequestContext.from_request(request)


# --- grants and separation of duties --------------------------------------------------------------------


def _render_access(request: HttpRequest, membership: Membership, *, grant_form: GrantForm | None = None,
                   sod_form: SodRuleForm | None = None, status: int = 200) -> HttpResponse:
    org, tz = membership.org, _tz(membership)
    for form in (grant_form, sod_form):
        if form is not None and form.errors:
            form.focus_first_error()
    rules = list(SodRule.objects.filter(org=org))
    return render(request, T + "access.html", {
        "membership": membership, "tab": "grants", "tz": tz, "rows": grant_rows(org, tz),
        "form": grant_form or GrantForm(org=org, tz=tz), "sod_form": sod_form or SodRuleForm(),
        "rules": rules, "types": [(t.name, type_label(t.name)) for t in registry.all_types().values()],
    }, status=status)


@admin_page(Permission.GRANTS_MANAGE, ACCESS_ONLY)
@require_http_methods(["GET", "POST"])
def access(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The grants of the org, and the form that adds one."""
    if request.method != "POST":
        return _render_access(request, membership)
    org = membership.org
    form = GrantForm(request.POST, org=org, tz=_tz(membership))
    if not form.is_valid():
        return _render_access(request, membership, grant_form=form)
    try:
        grant = services.grant_permission(org=org, context=_ctx(request), **form.service_kwargs())
    except InvalidInput as exc:
        form.add_service_errors(exc.errors)
    except (Conflict, PermissionDenied) as exc:
        form.add_error(None, exc.detail)
        return _render_access(request, membership, grant_form=form,
                              status=403 if isinstance(exc, PermissionDenied) else 409)
    else:
        who = grant.group.name if grant.group_id else grant.user.email
        messages.success(request, f"{who} now holds “{grant.action}” on {grant.resource}.")
        return HttpResponseRedirect(reverse("twig_auth:access"))
    return _render_access(request, membership, grant_form=form)


@admin_page(Permission.GRANTS_MANAGE, ACCESS_ONLY)
@require_POST
def revoke_grant(request: HttpRequest, membership: Membership, grant_id: str) -> HttpResponse:
    grant = Grant.objects.filter(org=membership.org, pk=grant_id).first()
    return _remove(request, grant, lambda: services.revoke_permission(grant=grant, context=_ctx(request)),
                   gone="That grant was already revoked.",
                   done=lambda: f"Revoked “{grant.action}” on {grant.resource}.")


@admin_page(Permission.POLICIES_MANAGE, ACCESS_ONLY)
@require_POST
def add_sod_rule(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = SodRuleForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            rule = services.add_sod_rule(org=membership.org, context=_ctx(request), **form.cleaned_data)
        except InvalidInput as exc:
            form.add_service_errors(exc.errors)
        except (Conflict, PermissionDenied) as exc:
            form.add_error(None, exc.detail)
            status = 403 if isinstance(exc, PermissionDenied) else 409
        else:
            messages.success(request, f"No member may now hold both {rule.first} and {rule.second}.")
            violators = getattr(rule, "violators", [])
            if violators:
                messages.warning(request, f"Already holding both: {', '.join(violators)}. Revoke a grant or change "
                                          "their role to comply.")
            return HttpResponseRedirect(reverse("twig_auth:access"))
    return _render_access(request, membership, sod_form=form, status=status)


@admin_page(Permission.POLICIES_MANAGE, ACCESS_ONLY)
@require_POST
def remove_sod_rule(request: HttpRequest, membership: Membership, rule_id: int) -> HttpResponse:
    rule = SodRule.objects.filter(org=membership.org, pk=rule_id).first()
    return _remove(request, rule, lambda: services.remove_sod_rule(rule=rule, context=_ctx(request)),
                   gone="That rule was already removed.",
                   done=lambda: f"Removed the rule {rule.first} ✕ {rule.second}.")


def _remove(request: HttpRequest, obj: Any, remove: Callable[[], None], *, gone: str,
            done: Callable[[], str]) -> HttpResponse:
    """Run ``remove()`` for a row that may already be gone; say what happened on the Access page."""
    if obj is None:
        messages.error(request, gone)
    else:
        try:
            remove()
        except (NotFound, PermissionDenied) as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, done())
    return HttpResponseRedirect(reverse("twig_auth:access"))


# --- time windows ---------------------------------------------------------------------------------------


@admin_page(Permission.GRANTS_MANAGE, ACCESS_ONLY)
@require_GET
def windows(request: HttpRequest, membership: Membership) -> HttpResponse:
    org, tz = membership.org, _tz(membership)
    return render(request, T + "windows.html", {"membership": membership, "tab": "windows", "tz": tz,
                                                "members": member_rows(org, tz), "groups": group_rows(org, tz)})


@admin_page(Permission.GRANTS_MANAGE, ACCESS_ONLY)
@require_http_methods(["GET", "POST"])
def edit_window(request: HttpRequest, membership: Membership, kind: str, pk: str) -> HttpResponse:
    """One member's or group's time window: set it, or remove it (``clear``)."""
    model = Membership if kind == "member" else Group
    target = model.objects.filter(org=membership.org, pk=pk).first()
    if target is None:
        raise Http404("No such member or group.")
    tz = _tz(membership)
    name = target.user.email if kind == "member" else target.name
    form = TimeWindowForm(request.POST if request.method == "POST" else None, tz=tz,
                          initial=TimeWindowForm.initial_from(target.access_control, tz))
    status = 200
    if request.method == "POST" and ("clear" in request.POST or form.is_valid()):
        document = None if "clear" in request.POST else form.access_control()
        try:
            services.set_access_control(target=target, document=document, context=_ctx(request))
        except InvalidInput as exc:
            form.add_service_errors(exc.errors)
        except PermissionDenied as exc:
            form.add_error(None, exc.detail)
            status = 403
        else:
            messages.success(request, f"{name} can now act at any time." if document is None else
                             f"Saved the time window of {name}.")
            return HttpResponseRedirect(reverse("twig_auth:access_windows"))
    form.focus_first_error()
    return render(request, T + "window.html", {"membership": membership, "tab": "windows", "form": form,
                                               "kind": kind, "target": target, "name": name, "tz": tz,
                                               "has_window": bool(target.access_control)}, status=status)


# --- policies -------------------------------------------------------------------------------------------


def _policy_or_404(membership: Membership, policy_id: str) -> Policy:
    policy = Policy.objects.filter(org=membership.org, pk=policy_id).first()
    if policy is None:
        raise Http404("No such policy.")
    return policy


@admin_page(Permission.POLICIES_MANAGE, POLICIES_ONLY)
@require_GET
def policies(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = [{"policy": p, "body": (p.document or {}).get("policy", {})}
            for p in Policy.objects.filter(org=membership.org).select_related("updated_by")]
    return render(request, T + "policies.html", {"membership": membership, "tab": "policies", "rows": rows,
                                                 "enterprise": membership.org.is_enterprise})


def _save_policy(request: HttpRequest, membership: Membership, policy: Policy | None) -> HttpResponse:
    org = membership.org
    form = PolicyForm(request.POST if request.method == "POST" else None, initial=None if policy is None else {
        "name": policy.name, "description": policy.description, "enabled": policy.enabled,
        "document": pretty(policy.document)})
    status = 200
    if request.method == "POST" and not org.is_enterprise:
        status = 403  # the page explains that policies need the enterprise plan
    elif request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        try:
            # Problems are shown at once; only a change that would be saved asks for a second factor.
            validate_policy(fields["document"], resource_types=registry.actions_by_type())
            prompt = require_step_up(request, action=STEP_UP_ACTION)
            if prompt is not None:
                return prompt
            if policy is None:
                policy = services.create_policy(org=org, context=_ctx(request), **fields)
                done = f"Created the policy “{policy.name}”."
            else:
                policy = services.update_policy(policy=policy, context=_ctx(request), **fields)
                done = f"Saved the policy “{policy.name}”."
        except InvalidInput as exc:
            form.add_service_errors(exc.errors)
        except PermissionDenied as exc:
            form.add_error(None, exc.detail)
            status = 403
        else:
            messages.success(request, done + (" It applies from now on." if policy.enabled else
                                              " It is disabled, so it does not apply yet."))
            return HttpResponseRedirect(reverse("twig_auth:access_policies"))
    form.focus_first_error()
    return render(request, T + "policy_form.html", {
        "membership": membership, "tab": "policies", "form": form, "policy": policy,
        "enterprise": org.is_enterprise, "tz": _tz(membership)}, status=status)


@admin_page(Permission.POLICIES_MANAGE, POLICIES_ONLY)
@require_http_methods(["GET", "POST"])
def new_policy(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _save_policy(request, membership, None)


@admin_page(Permission.POLICIES_MANAGE, POLICIES_ONLY)
@require_http_methods(["GET", "POST"])
def edit_policy(request: HttpRequest, membership: Membership, policy_id: str) -> HttpResponse:
    return _save_policy(request, membership, _policy_or_404(membership, policy_id))


@admin_page(Permission.POLICIES_MANAGE, POLICIES_ONLY)
@require_POST
def toggle_policy(request: HttpRequest, membership: Membership, policy_id: str) -> HttpResponse:
    policy = _policy_or_404(membership, policy_id)
    prompt = require_step_up(request, action=STEP_UP_ACTION)
    if prompt is not None:
        return prompt
    try:
        policy = services.update_policy(policy=policy, enabled=not policy.enabled, context=_ctx(request))
    except (InvalidInput, PermissionDenied) as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"“{policy.name}” is {'enabled' if policy.enabled else 'disabled'}.")
    return HttpResponseRedirect(reverse("twig_auth:access_policies"))


@admin_page(Permission.POLICIES_MANAGE, POLICIES_ONLY)
@require_http_methods(["GET", "POST"])
def delete_policy(request: HttpRequest, membership: Membership, policy_id: str) -> HttpResponse:
    policy = _policy_or_404(membership, policy_id)
    if request.method == "POST":
        prompt = require_step_up(request, action=STEP_UP_ACTION)
        if prompt is not None:
            return prompt
        try:
            services.delete_policy(policy=policy, context=_ctx(request))
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"Deleted the policy “{policy.name}”.")
        return HttpResponseRedirect(reverse("twig_auth:access_policies"))
    return render(request, T + "policy_delete.html", {"policy": policy, "body": policy.document.get("policy", {})})


# --- try it ---------------------------------------------------------------------------------------------


@admin_page(Permission.AUTHZ_EXPLAIN, EXPLAIN_ONLY)
@require_GET
def try_it(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Run a decision for a chosen member, action, resource and time, and show every step of it.

    A GET form: a "Why?" link elsewhere pre-fills it; the decision runs once member, action and resource
    are all given.
    """
    org, tz = membership.org, _tz(membership)
    asked = all(request.GET.get(k) for k in ("member", "action", "resource"))
    form = TryForm(request.GET if asked else None, org=org, tz=tz, initial=request.GET.dict())
    result = None
    status = 200
    if asked and form.is_valid():
        d = form.cleaned_data
        member = Membership.objects.filter(org=org, pk=int(d["member"])).select_related("user").first()
        try:
            resource = resolve_resource(org, d["resource"])
        except NotFound as exc:
            form.add_error("resource", exc.detail)
        else:
            context = RequestContext(actor=member.user, ip=d.get("ip") or None, mfa_used=bool(d.get("mfa")))
            decision = explain(member, d["action"].partition(":")[2], resource, at=form.at_utc, context=context)
            result = {"decision": decision, "member": member, "resource": resource,
                      "resource_key": d["resource"], "action": d["action"].partition(":")[2],
                      "at": d.get("at"), "steps": step_rows(decision),
                      "decided_by": kind_label(decision.decided_by)}
    elif asked:
        status = 400
    form.focus_first_error()
    return render(request, T + "try.html", {"membership": membership, "tab": "try", "form": form, "result": result,
                                            "tz": tz}, status=status)
