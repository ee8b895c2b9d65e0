"""Every server-rendered page in a real Chromium, as every role.

The URLconf is enumerated (:func:`routes`): each route outside ``/api/`` and ``/admin/`` is either a page of
:data:`PAGES` (opened as anonymous, user, manager, admin and super admin, with the status each one must get) or
a route of :data:`NOT_PAGES` (POST-only actions, callbacks, XML), with the answer a GET gets. A route in neither
fails :func:`test_every_route_is_covered`, so a page added later cannot go unchecked.

On every page (:meth:`Visitor.audit`): the expected status (or redirect), no server error text, no console error
or failed request, every form control with an accessible label (``<label for>``, a wrapping label, ``aria-label``
or ``aria-labelledby``), every link and button with a name that contains its visible label (WCAG 2.5.3), no
reference to a missing id, exactly one ``<h1>`` and one ``<main>``, ``<html lang>``, a ``<title>``, no duplicate
``id``, no sideways scrolling; and, once per page, axe-core's WCAG 2.1 A/AA and best-practice rules.
:func:`test_pages_in_other_states` runs the same checks on what forms answer (errors, results, prompts).

Screenshots go to artifacts/screens/pages/. ``TWIG_UPDATE_SCREENS=1`` writes them to docs/screens/ instead and
regenerates docs/pages.md (the gallery); :func:`test_the_gallery_is_up_to_date` checks the committed gallery
against :data:`PAGES`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENS = ROOT / "docs" / "screens"
GALLERY = ROOT / "docs" / "pages.md"
UPDATE = os.environ.get("TWIG_UPDATE_SCREENS") == "1"
SCREENS = DOCS_SCREENS if UPDATE else ROOT / "artifacts" / "screens" / "pages"
MAX_SHOT_HEIGHT = 1600  # px: long pages are cut, the files stay small

ROLES = ("anonymous", "user", "manager", "admin", "super_admin")
MEMBERS = ROLES[1:]
EMAILS = {"user": "ann@acme.test", "manager": "mia@acme.test", "admin": "ada@acme.test",
          "super_admin": "owner@acme.test"}
SHOT_ROLE = {"anonymous": "anonymous", "user": "user", "manager": "manager", "admin": "admin",
             "super_admin": "owner"}
ERROR_TEXT = ("Server Error", "Internal Server Error", "Something went wrong", "Traceback", "TemplateDoesNotExist",
              "TemplateSyntaxError", "NoReverseMatch", "Exception Value", "VariableDoesNotExist")
ACCOUNT = "Signed-in members"
ADMINS = "Admins and super admins"
ANYONE = "Anyone"


@dataclass(frozen=True)
class Goes:
    """The page answers with a redirect; the browser ends on ``path`` (LOGIN: the sign-in page, ``?next=`` the
    page asked for)."""

    path: str


LOGIN = Goes("/login/")
Expect = int | Goes
World = dict[str, Any]


def everyone(status: Expect = 200) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, status)


def signed_in(status: Expect = 200) -> dict[str, Expect]:
    return {"anonymous": LOGIN, **dict.fromkeys(MEMBERS, status)}


def admins(status: Expect = 200) -> dict[str, Expect]:
    return {"anonymous": LOGIN, "user": 403, "manager": 403, "admin": status, "super_admin": status}


@dataclass(frozen=True)
class Page:
    name: str  # the URL name, as the URLconf has it
    title: str
    section: str
    url: str | Callable[[World, str], str]  # a path, or a function of the seeded world and the role
    expect: dict[str, Expect]
    who: str
    shots: tuple[str, ...] = ()  # roles screenshotted at desktop width (default: one role that gets 200)
    phone: tuple[str, ...] = ()  # roles screenshotted at phone width
    prepare: Callable[[Any, World], None] | None = None  # run first in a fresh browser, for the anonymous visitor
    note: str = ""
    screenshot: bool = True  # False: nobody gets a page of its own (a redirect, or the forbidden page)

    def path(self, world: World, role: str) -> str:
        return self.url(world, role) if callable(self.url) else self.url

    def shot_roles(self) -> tuple[str, ...]:
        """The roles screenshotted at desktop width: ``shots``, else the first role that gets the page (200), else
        the first that gets another answer than a redirect (a 403 or 404 page)."""
        if self.shots or not self.screenshot:
            return self.shots
        order = ("anonymous", "super_admin", "admin", "manager", "user")
        return next(((r,) for r in order if self.expect[r] == 200),
                    next(((r,) for r in order if not isinstance(self.expect[r], Goes)), ()))

    @property
    def slug(self) -> str:
        return self.name.rpartition(":")[2].replace("_", "-")

    def shot_name(self, role: str, phone: bool = False) -> str:
        return f"{self.slug}-{SHOT_ROLE[role]}{'-phone' if phone else ''}.png"


def _pending_second_factor(page: Any, world: World) -> None:
    """Password accepted for a member with an authenticator app: the sign-in waits for the code."""
    sign_in(page, "tia@acme.test", PASSWORD)
    page.wait_for_url("**/login/verify/")


def own_key(world: World, role: str) -> str:
    """The id of the key ``role``'s member created (a made-up one for the anonymous visitor)."""
    return world["keys"].get(role, "key_0")


OWN_KEYS = "Signed-in members, for the keys they may manage (admins: every key of the organization)"
SIGN_IN = "Signing in"
ACCOUNT_PAGES = "Your account"
KEYS = "API keys"
SECURITY = "Settings → Security"
ACCESS = "Settings → Access"
WORKSPACE = "Workspace"
SSO = "SSO and connectors"

PAGES: tuple[Page, ...] = (
    # --- signing in -------------------------------------------------------------------------------------------
    Page("twig_auth:login", "Sign in", SIGN_IN, "/login/", {"anonymous": 200, **dict.fromkeys(MEMBERS, Goes("/"))},
         ANYONE, phone=("anonymous",), note="Signed-in visitors go home."),
    Page("twig_auth:login_mfa", "Two-step verification", SIGN_IN, "/login/verify/",
         {"anonymous": 200, **dict.fromkeys(MEMBERS, Goes("/"))}, "Anyone whose password was just accepted",
         phone=("anonymous",), prepare=_pending_second_factor,
         note="Only after the password of a member with a second factor; otherwise back to the sign-in page."),
    Page("twig_auth:sso_discover", "Sign in with SSO", SIGN_IN, "/login/sso/", everyone(), ANYONE),
    Page("twig_auth:logout", "Sign out", SIGN_IN, "/logout/", everyone(), ANYONE),
    Page("twig_auth:password_reset", "Reset your password", SIGN_IN, "/password/reset/", everyone(), ANYONE),
    Page("twig_auth:password_reset_done", "Reset link sent", SIGN_IN, "/password/reset/sent/", everyone(), ANYONE),
    Page("twig_auth:password_reset_confirm", "Choose a new password", SIGN_IN,
         lambda w, r: f"/password/reset/{w['reset_uid']}/{w['reset_token']}/", everyone(),
         "Anyone with a valid reset link"),
    Page("twig_auth:password_reset_complete", "Password reset complete", SIGN_IN, "/password/reset/complete/",
         everyone(), ANYONE),
    # --- the signed-in member -----------------------------------------------------------------------------------
    Page("home", "Home", ACCOUNT_PAGES, "/", signed_in(), ACCOUNT, shots=("user", "super_admin"), phone=("user",)),
    Page("twig_auth:choose_org", "Choose an organization", ACCOUNT_PAGES, "/organizations/choose/", signed_in(),
         ACCOUNT),
    Page("twig_auth:password_change", "Change password", ACCOUNT_PAGES, "/password/change/", signed_in(), ACCOUNT),
    Page("twig_auth:password_change_done", "Password changed", ACCOUNT_PAGES, "/password/change/done/",
         signed_in(), ACCOUNT),
    Page("twig_auth:sessions", "Sessions", ACCOUNT_PAGES, "/settings/sessions/", signed_in(), ACCOUNT,
         shots=("user", "super_admin"), note="Admins also see the members of the organization."),
    Page("twig_auth:mfa", "Two-factor authentication", ACCOUNT_PAGES, "/settings/mfa/", signed_in(), ACCOUNT,
         phone=("user",)),
    Page("twig_auth:mfa_totp", "Add an authenticator app", ACCOUNT_PAGES, "/settings/mfa/totp/", signed_in(),
         ACCOUNT),
    Page("twig_auth:mfa_sms", "Add a phone (text message)", ACCOUNT_PAGES, "/settings/mfa/sms/", signed_in(),
         ACCOUNT),
    Page("twig_auth:mfa_recovery", "New recovery codes", ACCOUNT_PAGES, "/settings/mfa/recovery/",
         signed_in(Goes("/settings/mfa/")), ACCOUNT, note="A POST (after a second factor); a GET goes back to the "
                                                          "two-factor page."),
    Page("twig_auth:mfa_remove", "Remove a two-factor device", ACCOUNT_PAGES,
         lambda w, r: f"/settings/mfa/devices/{w['devices'].get(r, 'totp-0')}/remove/", signed_in(),
         "Signed-in members, for their own devices"),
    Page("twig_auth:mfa_verify", "Confirm it's you (step-up)", ACCOUNT_PAGES, "/mfa/verify/?next=/settings/mfa/",
         signed_in(), ACCOUNT),
    # --- API keys -----------------------------------------------------------------------------------------------
    Page("twig_auth:api_keys", "API keys", KEYS, "/settings/api-keys/", signed_in(), ACCOUNT,
         shots=("user", "super_admin"), phone=("user",), note="Admins see every key of the organization."),
    Page("twig_auth:api_key_usage", "API key usage", KEYS, lambda w, r: f"/settings/api-keys/{own_key(w, r)}/usage/",
         signed_in(), OWN_KEYS),
    Page("twig_auth:api_key_roll", "Roll an API key", KEYS, lambda w, r: f"/settings/api-keys/{own_key(w, r)}/roll/",
         signed_in(), OWN_KEYS),
    Page("twig_auth:api_key_revoke", "Revoke an API key", KEYS,
         lambda w, r: f"/settings/api-keys/{own_key(w, r)}/revoke/", signed_in(), OWN_KEYS),
    # --- Settings → Security ------------------------------------------------------------------------------------
    Page("twig_auth:security_settings", "Security settings", SECURITY, "/settings/security/", admins(), ADMINS,
         shots=("super_admin", "user"), note="Everyone else gets the “Not allowed” page (403)."),
    Page("twig_auth:ip_allowlist", "IP allowlist", SECURITY, "/settings/security/ip-allowlist/", admins(), ADMINS),
    Page("twig_auth:access_logs", "Access logs", SECURITY, "/settings/security/access-logs/", admins(), ADMINS),
    Page("twig_auth:access_review", "Access review", SECURITY, "/settings/security/access-review/", admins(), ADMINS),
    Page("twig_auth:authentication_settings", "Authentication (SSO)", SECURITY, "/settings/authentication/",
         admins(), ADMINS),
    Page("twig_auth:member_sessions", "A member's sessions", SECURITY,
         lambda w, r: f"/settings/sessions/member/{w['ann_membership']}/", admins(), ADMINS),
    Page("twig_auth:external_api_keys", "External API keys", SECURITY, "/settings/external-api-keys/", admins(),
         ADMINS),
    Page("twig_auth:external_api_key_add", "Add an external API key", SECURITY, "/settings/external-api-keys/add/",
         admins(Goes("/settings/external-api-keys/")), ADMINS, screenshot=False,
         note="A POST; a GET goes to the form on the External API keys page."),
    Page("twig_auth:external_api_key_replace", "Replace an external API key", SECURITY,
         lambda w, r: f"/settings/external-api-keys/{w['external_key']}/replace/", admins(), ADMINS),
    Page("twig_auth:external_api_key_delete", "Delete an external API key", SECURITY,
         lambda w, r: f"/settings/external-api-keys/{w['external_key']}/delete/", admins(), ADMINS),
    # --- Settings → Access --------------------------------------------------------------------------------------
    Page("twig_auth:access", "Access (grants)", ACCESS, "/settings/access/", admins(), ADMINS),
    Page("twig_auth:access_windows", "Time windows", ACCESS, "/settings/access/windows/", admins(), ADMINS),
    Page("twig_auth:access_window", "Edit a time window", ACCESS,
         lambda w, r: f"/settings/access/windows/member/{w['ann_membership']}/", admins(), ADMINS),
    Page("twig_auth:access_policies", "Policies", ACCESS, "/settings/access/policies/", admins(), ADMINS),
    Page("twig_auth:access_policy_new", "New policy", ACCESS, "/settings/access/policies/new/", admins(), ADMINS),
    Page("twig_auth:access_policy", "Edit a policy", ACCESS, lambda w, r: f"/settings/access/policies/{w['policy']}/",
         admins(), ADMINS),
    Page("twig_auth:access_policy_delete", "Delete a policy", ACCESS,
         lambda w, r: f"/settings/access/policies/{w['policy']}/delete/", admins(), ADMINS),
    Page("twig_auth:access_try", "Try it (explain a decision)", ACCESS, "/settings/access/try/", admins(), ADMINS),
    # --- the reference project's workspace ----------------------------------------------------------------------
    Page("agents", "Agents", WORKSPACE, "/agents/", signed_in(), ACCOUNT, shots=("user", "super_admin"),
         phone=("user",), note="Who may edit or use each agent follows the permission model."),
    Page("data_sources", "Data sources", WORKSPACE, "/data-sources/", signed_in(), ACCOUNT,
         shots=("user", "manager"), note="Managers and above may add sources."),
    # --- SSO and connectors -------------------------------------------------------------------------------------
    Page("twig_auth:connector_callback", "Connection failed (OAuth callback)", SSO, "/connectors/callback/",
         signed_in(403), ACCOUNT, note="Reached from the provider; without a valid state it explains the refusal."),
)

# A page outside the URLconf: the 404 page every unknown path gets.
NOT_FOUND = Page("not_found", "Page not found", "Errors", "/no-such-page/", everyone(404), ANYONE)

POST_ONLY = "POST only: a button on its page"
NO_SSO = " (404 here: the organization has no SSO connection; the SSO browser tests go through it with an IdP)"
# Routes that are not pages a browser opens by GET: what a GET gets (as the super admin) and why.
NOT_PAGES: dict[str, tuple[str, int, str]] = {
    "twig_auth:access_revoke": ("/settings/access/grants/{grant}/revoke/", 405, POST_ONLY),
    "twig_auth:access_sod_add": ("/settings/access/sod/", 405, POST_ONLY),
    "twig_auth:access_sod_remove": ("/settings/access/sod/1/remove/", 405, POST_ONLY),
    "twig_auth:access_policy_toggle": ("/settings/access/policies/{policy}/toggle/", 405, POST_ONLY),
    "twig_auth:authentication_enabled": ("/settings/authentication/enabled/", 405, POST_ONLY),
    "twig_auth:authentication_enforce": ("/settings/authentication/enforce/", 405, POST_ONLY),
    "twig_auth:authentication_domain_add": ("/settings/authentication/domains/", 405, POST_ONLY),
    "twig_auth:authentication_domain_verify": ("/settings/authentication/domains/1/verify/", 405, POST_ONLY),
    "agent_model": ("/agents/{agent}/model/", 405, POST_ONLY),
    "agent_ask": ("/agents/{agent}/ask/", 405, POST_ONLY),
    "data_source_connect": ("/data-sources/{source}/connect/", 405, POST_ONLY),
    "data_source_disconnect": ("/data-sources/{source}/disconnect/", 405, POST_ONLY),
    "data_source_sync": ("/data-sources/{source}/sync/", 405, POST_ONLY),
    "twig_auth:access_logs_download": ("/settings/security/access-logs/download/?format=csv", 200,
                                       "a file: the filtered access logs as CSV or JSON Lines (admins)"),
    # Steps of an SSO sign-in, between the browser and the organization's IdP; Acme has no SSO connection here, so
    # they answer 404. With an IdP: tests/e2e/test_saml_sso_browser.py and test_oidc_sso_browser.py.
    "twig_auth:sso_saml_metadata": ("/sso/saml/acme/metadata/", 404, f"XML for the IdP (the SP metadata){NO_SSO}"),
    "twig_auth:sso_saml_login": ("/sso/saml/acme/login/", 404, f"redirects to the IdP{NO_SSO}"),
    "twig_auth:sso_saml_acs": ("/sso/saml/acme/acs/", 405, "the IdP posts the SAML response here"),
    "twig_auth:sso_oidc_login": ("/sso/oidc/acme/login/", 404, f"redirects to the IdP{NO_SSO}"),
    "google_callback": ("/sso/oidc/accounts/google/login/callback/", 404, f"the IdP redirects back here{NO_SSO}"),
    "microsoft_callback": ("/sso/oidc/accounts/microsoft/login/callback/", 404,
                           f"the IdP redirects back here{NO_SSO}"),
    "openid_connect_callback": ("/sso/oidc/accounts/oidc/none/login/callback/", 404,
                                f"the IdP redirects back here{NO_SSO}"),
}


# --- the URLconf ----------------------------------------------------------------------------------------------


def routes() -> dict[str, str]:
    """Every route of the URLconf outside /api/ and /admin/: its name (namespaced) or, unnamed, its route."""
    from django.urls import URLResolver, get_resolver

    found: dict[str, str] = {}

    def walk(patterns: list[Any], prefix: str, namespaces: tuple[str, ...]) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route, (*namespaces, pattern.namespace) if pattern.namespace else namespaces)
                continue
            key = ":".join((*namespaces, pattern.name)) if pattern.name else route
            assert found.get(key, route) == route, f"two routes named {key}: {found[key]} and {route}"
            found[key] = route

    walk(get_resolver().url_patterns, "", ())
    return {k: v for k, v in found.items() if not v.startswith(("api/", "admin/"))}


def test_every_route_is_covered() -> None:
    """A page or route added to the URLconf without an entry in PAGES or NOT_PAGES fails here."""
    covered = {p.name for p in PAGES} | set(NOT_PAGES)
    assert len(covered) == len(PAGES) + len(NOT_PAGES), "a route is listed twice"
    known = routes()
    missing = {name: known[name] for name in sorted(set(known) - covered)}
    stale = sorted(covered - set(known))
    assert not missing, f"routes without a browser check (add them to PAGES or NOT_PAGES): {missing}"
    assert not stale, f"PAGES/NOT_PAGES name routes the URLconf no longer has: {stale}"
    for page in PAGES:
        assert set(page.expect) == set(ROLES), page.name


# --- the seeded organization ----------------------------------------------------------------------------------


@pytest.fixture
def world(org: Any, owner: Any, make_org: Any, make_member: Any, totp_device: Any) -> World:
    """Acme (enterprise) with one member per role, a group, an agent, a data source, an API key per member, an
    OpenAI key, a policy, a member with an authenticator app and one with a fresh password-reset link."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from twig_auth.apikeys.services import issue_api_key
    from twig_auth.authz.models import Grant
    from twig_auth.authz.services import create_policy
    from twig_auth.core import clock
    from twig_auth.core.context import RequestContext
    from twig_auth.orgs import services as org_services
    from twig_auth.orgs.models import Group, GroupMembership
    from twig_auth.providerkeys.services import save_external_key
    from twig_project.workspace import services

    system = RequestContext.system(owner.user)
    members = {"super_admin": owner, "admin": make_member(org, "admin", email="ada@acme.test"),
               "manager": make_member(org, "manager", email="mia@acme.test"),
               "user": make_member(org, "user", email="ann@acme.test")}
    # The super admin belongs to a second organization too: the header shows the organization switcher.
    org_services.add_member(org=make_org("globex", name="Globex", plan="team"), user=owner.user, role="admin")
    GroupMembership.objects.create(group=Group.objects.create(org=org, name="Support"), membership=members["user"])
    agent = services.create_agent(org=org, name="Support bot", description="Answers customers of Acme.",
                                  config={"faq": {"refund": "Refunds take 5 business days."}}, context=system)
    sales = services.create_agent(org=org, name="Sales assistant", model_provider="anthropic",
                                  model_name="claude-3-5-haiku-latest", context=system)
    for one in (agent, sales):  # the user may ask both
        Grant.objects.create(org=org, resource_type="agent", resource_id=one.pk, action="use",
                             user=members["user"].user, created_at=clock.now())
    source = services.create_data_source(org=org, name="Help center", kind="website", context=system)
    services.create_data_source(org=org, name="Team drive", kind="google_drive", context=system)
    keys = {role: issue_api_key(creator=m, name=f"{m.user.email.partition('@')[0].title()}'s script",
                                scopes=["read"], environment="live")[0].pk for role, m in members.items()}
    external = save_external_key(org=org, provider="openai", secret="sk-proj-every-page-test-0001", context=system)
    policy = create_policy(org=org, name="Office network only", context=system, document={"policy": {
        "resource": "agent:*", "action": "*", "effect": "deny",
        "conditions": [{"request.ip": {"cidr": "203.0.113.0/24"}}]}})
    totp_device(make_member(org, "user", email="tia@acme.test").user)
    rex = make_member(org, "user", email="rex@acme.test").user  # never signs in: the reset link stays valid
    return {"org": org, "members": members, "keys": keys, "external_key": external.pk, "policy": policy.pk,
            "agent": agent.pk, "source": source.pk, "ann_membership": members["user"].pk, "devices": {},
            "reset_uid": urlsafe_base64_encode(force_bytes(rex.pk)),
            "reset_token": default_token_generator.make_token(rex)}


# --- checks ---------------------------------------------------------------------------------------------------

AUDIT_JS = r"""() => {
  const byIds = (el, attr) => (el.getAttribute(attr) || '').split(/\s+/).filter(Boolean)
    .map(id => { const t = document.getElementById(id); return t ? t.textContent : ''; }).join(' ').trim();
  const own = (el, attr) => (el.getAttribute(attr) || '').trim();
  // A form control's label: <label for>, a wrapping <label>, aria-label or aria-labelledby.
  const labelled = el => Array.from(el.labels || []).some(l => l.textContent.trim())
    || own(el, 'aria-label') || byIds(el, 'aria-labelledby');
  // A link's or button's name: its text, an image's alt, aria-label(ledby) or title.
  const named = el => own(el, 'aria-label') || byIds(el, 'aria-labelledby') || el.textContent.trim()
    || Array.from(el.querySelectorAll('img[alt], svg[aria-label]'))
         .map(i => i.getAttribute('alt') || i.getAttribute('aria-label')).join('').trim()
    || own(el, 'title') || (el.tagName === 'INPUT' ? (el.value || '').trim() : '');
  const html = (el, n = 200) => el.outerHTML.slice(0, n);

  const unlabeled = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (el.tagName === 'INPUT' && ['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
    if (!labelled(el)) unlabeled.push(html(el));
  }
  const nameless = [];
  for (const el of document.querySelectorAll('a[href], button, summary, input[type=submit], input[type=button]')) {
    if (!named(el)) nameless.push(html(el));
  }
  for (const el of document.querySelectorAll('img:not([alt])')) nameless.push(html(el));
  // WCAG 2.5.3 (label in name): a visible label is part of the name given by aria-label.
  const norm = t => t.replace(/[^\p{L}\p{N}]+/gu, ' ').trim().toLowerCase();  // punctuation does not count
  const shown = el => Array.from(el.childNodes).map(n => n.nodeType === Node.TEXT_NODE ? n.textContent
    : n.nodeType === Node.ELEMENT_NODE && n.getAttribute('aria-hidden') !== 'true'
      && !n.classList.contains('visually-hidden') ? ` ${shown(n)} ` : '').join('');
  const mismatched = [];
  for (const el of document.querySelectorAll('a[href][aria-label], button[aria-label], summary[aria-label]')) {
    const visible = norm(shown(el));
    if (visible && !norm(el.getAttribute('aria-label')).includes(visible)) mismatched.push(html(el));
  }
  for (const el of document.querySelectorAll('svg:not([aria-hidden="true"])')) {
    // inside a hidden part, or inside a named role="img" (whose children are presentational): fine
    if (el.parentElement && el.parentElement.closest('[aria-hidden="true"], [role="img"][aria-label]')) continue;
    if (!(own(el, 'aria-label') || byIds(el, 'aria-labelledby') || el.querySelector('title'))) {
      nameless.push(html(el, 120));
    }
  }
  const brokenRefs = [];
  const labelable = ['INPUT', 'SELECT', 'TEXTAREA', 'METER', 'OUTPUT', 'PROGRESS', 'BUTTON'];
  for (const l of document.querySelectorAll('label[for]')) {
    const target = document.getElementById(l.htmlFor);
    if (!target || !labelable.includes(target.tagName)) brokenRefs.push(`<label for="${l.htmlFor}">`);
  }
  for (const attr of ['aria-labelledby', 'aria-describedby', 'aria-controls']) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      for (const id of el.getAttribute(attr).split(/\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) brokenRefs.push(`${attr}="${id}" on <${el.tagName.toLowerCase()}>`);
      }
    }
  }
  const ids = {};
  for (const el of document.querySelectorAll('[id]')) ids[el.id] = (ids[el.id] || 0) + 1;
  return {
    lang: own(document.documentElement, 'lang'),
    title: document.title.trim(),
    h1: Array.from(document.querySelectorAll('h1')).map(h => h.textContent.trim()),
    mains: document.querySelectorAll('main').length,
    unlabeled,
    nameless,
    mismatched,
    brokenRefs,
    duplicateIds: Object.keys(ids).filter(k => ids[k] > 1),
    text: document.body ? document.body.innerText : '',
    wide: document.documentElement.scrollWidth > window.innerWidth,
  };
}"""


AXE_RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
             "resultTypes": ["violations"]}


class Visitor:
    """One browser page; records console errors, failed requests and the status of the last document."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.status = 0
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def _failed(self, request: Any) -> None:
        if request.failure != "net::ERR_ABORTED":  # a load cut short by the next navigation is no fault
            self.errors.append(f"request failed: {request.url} {request.failure}")

    def _response(self, response: Any) -> None:
        if response.request.is_navigation_request() and response.frame == self.page.main_frame:
            self.status = response.status
        elif response.status >= 400:
            self.errors.append(f"{response.request.resource_type} answered {response.status}: {response.url}")

    def open(self, path: str, expected: Expect, *, axe: bool = False) -> list[str]:
        """Open ``path``: the problems found (status or redirect, then :meth:`audit`)."""
        self.errors.clear()
        self.page.goto(path)
        problems: list[str] = []
        final = urlparse(self.page.url)
        if isinstance(expected, Goes):
            if final.path != expected.path:
                problems.append(f"expected to end on {expected.path}, ended on {final.path} ({self.status})")
            if expected is LOGIN and parse_qs(final.query).get("next") != [path]:
                problems.append(f"the sign-in page should come back to {path}, next={parse_qs(final.query)}")
            if self.status != 200:
                problems.append(f"the page it redirected to answered {self.status}")
        elif self.status != expected:
            problems.append(f"status {self.status}, expected {expected}")
        elif final.path != urlparse(path).path and not path.startswith("/password/reset/"):
            problems.append(f"expected to stay on {path}, ended on {self.page.url}")  # (a reset link moves once)
        return problems + self.audit(axe=axe)

    def audit(self, *, axe: bool = False) -> list[str]:
        """Check the document shown now; with ``axe``, run axe-core's WCAG 2.1 A/AA and best-practice rules."""
        self.page.wait_for_load_state("load")
        found = self.page.evaluate(AUDIT_JS)
        problems = [e for e in self.errors if not _expected_console_error(e, self.status, self.page.url)]
        if self.status >= 500:
            problems.append(f"server error {self.status}")
        problems += [f"server error text {t!r} in the page" for t in ERROR_TEXT if t in found["text"]]
        if not found["lang"]:
            problems.append("<html> has no lang")
        if not found["title"]:
            problems.append("no <title>")
        if len(found["h1"]) != 1:
            problems.append(f"{len(found['h1'])} <h1> elements: {found['h1']}")
        if found["mains"] != 1:
            problems.append(f"{found['mains']} <main> elements")
        problems += [f"form control without a label: {html}" for html in found["unlabeled"]]
        problems += [f"no accessible name: {html}" for html in found["nameless"]]
        problems += [f"aria-label does not contain the visible label: {html}" for html in found["mismatched"]]
        problems += [f"reference to a missing element: {ref}" for ref in found["brokenRefs"]]
        problems += [f"duplicate id {i!r}" for i in found["duplicateIds"]]
        if found["wide"]:
            problems.append("scrolls sideways")
        if axe:
            from axe_playwright_python.sync_playwright import Axe

            for rule in Axe().run(self.page, options=AXE_RULES).response["violations"]:
                targets = [" ".join(node["target"]) for node in rule["nodes"]][:5]
                problems.append(f"axe {rule['id']} ({rule['impact']}): {rule['help']} — {targets}")
        return problems


def _expected_console_error(error: str, status: int, url: str) -> bool:
    """Chromium logs the document's own 4xx status as a console error: that one is the page's answer."""
    return (status >= 400 and error.startswith(f"console: Failed to load resource: the server responded with a "
                                               f"status of {status}") and error.endswith(f"({url})"))


def shoot(page: Any, name: str) -> Path:
    """Save a screenshot of the page's top (at most MAX_SHOT_HEIGHT px), quantized by pngquant when present."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / name
    width = page.viewport_size["width"]
    height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_SHOT_HEIGHT)
    page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height},
                    animations="disabled", caret="hide")
    pngquant = shutil.which("pngquant")
    if UPDATE and pngquant:
        subprocess.run([pngquant, "--force", "--skip-if-larger", "--strip", "--quality=60-90", "--output",
                        str(path), str(path)], check=False, timeout=60)
    return path


def signed_in_page(new_page: Callable[..., Any], role: str, viewport: dict[str, int] | None = None) -> Any:
    page = new_page(viewport)
    if role == "anonymous":
        return page
    sign_in(page, EMAILS[role], PASSWORD)
    if "/organizations/choose/" in page.url:
        page.get_by_role("button", name="Acme").first.click()
        page.wait_for_url("**/")
    assert urlparse(page.url).path == "/", f"{role} could not sign in: {page.url}"
    return page


@pytest.mark.parametrize("role", ROLES)
def test_every_page_as(role: str, world: World, new_page: Callable[..., Any], totp_device: Any) -> None:
    """Every page of PAGES (and the 404 page) as ``role``: the checks of :meth:`Visitor.audit` everywhere, axe-core
    where a screenshot is taken (one role per page: the same templates answer the others), the phone width for
    the pages of ``Page.phone``."""
    desktop = Visitor(signed_in_page(new_page, role))
    phone = Visitor(signed_in_page(new_page, role, PHONE)) if any(role in p.phone for p in PAGES) else None
    if role != "anonymous":  # added after signing in, so signing in asks for no code
        device, _ = totp_device(world["members"][role].user, name="Pixel 8")
        world["devices"][role] = f"totp-{device.pk}"
    problems: list[str] = []
    for entry in (*PAGES, NOT_FOUND):
        path, expected = entry.path(world, role), entry.expect[role]
        for visitor, shots, suffix in ((desktop, entry.shot_roles(), ""), (phone, entry.phone, " on a phone")):
            if visitor is None or (suffix and role not in shots):
                continue
            if entry.prepare is not None and role == "anonymous":  # a fresh browser, made ready for the page
                visitor = Visitor(new_page(visitor.page.viewport_size))
                entry.prepare(visitor.page, world)
            found = visitor.open(path, expected, axe=role in shots)
            problems += [f"{entry.name} {path} as {role}{suffix}: {p}" for p in found]
            if role in shots:
                shoot(visitor.page, entry.shot_name(role, phone=bool(suffix)))
    assert not problems, "\n".join(problems)


def test_pages_in_other_states(world: World, new_page: Callable[..., Any], totp_device: Any, make_user: Any,
                               make_org: Any, make_member: Any) -> None:
    """The same checks on what pages show after a form is sent or with a query: errors, results, a new secret,
    the step-up prompt, pages of a non-enterprise organization, a member outside the IP allowlist, a user of no
    organization."""
    from playwright.sync_api import expect

    from tests.conftest import oathtool
    from twig_auth.orgs.services import update_org_settings

    problems: list[str] = []

    def check(visitor: Visitor, state: str) -> None:
        problems.extend(f"{state} ({urlparse(visitor.page.url).path}): {p}" for p in visitor.audit(axe=True))
        visitor.errors.clear()

    def submit(visitor: Visitor, button: str) -> None:
        visitor.errors.clear()
        visitor.page.get_by_role("button", name=button, exact=True).first.click()
        visitor.page.wait_for_load_state()

    def new_policy(visitor: Visitor) -> None:
        visitor.page.goto("/settings/access/policies/new/")
        visitor.page.get_by_label("Name").fill("Block a network")
        visitor.page.get_by_label("Policy (JSON)").fill(
            '{"policy": {"resource": "agent:*", "action": "*", "effect": "deny", '
            '"conditions": [{"request.ip": {"cidr": "198.51.100.0/24"}}]}}')
        submit(visitor, "Create policy")

    anon = Visitor(new_page())
    anon.page.goto("/login/")
    anon.page.get_by_label("Email").fill("ann@acme.test")
    anon.page.get_by_label("Password", exact=True).fill("Wrong-Horse-9!")
    submit(anon, "Sign in")
    expect(anon.page.get_by_role("alert").first).to_be_visible()
    check(anon, "sign-in refused")
    anon.page.goto("/login/sso/")
    anon.page.get_by_label("Work email").fill("someone@nowhere.test")
    submit(anon, "Continue")
    check(anon, "no SSO for that email")
    anon.page.goto("/password/reset/Mg/set-password/")
    expect(anon.page.get_by_role("heading", name="Reset link not valid")).to_be_visible()
    check(anon, "a used reset link")
    verify = Visitor(new_page())
    _pending_second_factor(verify.page, world)
    verify.page.get_by_label("Verification code").fill("12")
    submit(verify, "Verify and sign in")
    check(verify, "a wrong second-factor code")

    owner = Visitor(signed_in_page(new_page, "super_admin"))
    page = owner.page
    page.goto("/password/change/")
    page.get_by_label("Old password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password confirmation").fill("other")
    submit(owner, "Change password")
    check(owner, "password change errors")
    page.goto("/settings/api-keys/")
    page.get_by_label("Name", exact=True).fill("Nightly export")
    submit(owner, "Generate key")
    expect(page.get_by_text("twigsk_live_").first).to_be_visible()
    check(owner, "a new API key shown once")
    page.goto("/settings/security/access-logs/?ip=not-an-ip")
    check(owner, "access logs, a wrong IP filter")
    page.goto("/settings/security/ip-allowlist/")
    page.get_by_label("Allowed IP ranges").fill("10.0.0.0/33")
    submit(owner, "Save allowlist")
    check(owner, "IP allowlist errors")
    page.goto(f"/settings/access/try/?member={world['ann_membership']}&action=agent%3Ause"
              f"&resource=agent%3A{world['agent']}")
    expect(page.locator(".verdict")).to_be_visible()
    check(owner, "try it: a verdict")
    new_policy(owner)
    check(owner, "step-up refused: no second factor set up")
    page.goto("/settings/mfa/totp/")
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    page.get_by_label("6-digit code from the app").fill("000000" if oathtool(secret) != "000000" else "111111")
    submit(owner, "Turn on two-factor authentication")
    check(owner, "authenticator app: a wrong code")
    page.get_by_label("6-digit code from the app").fill(oathtool(secret))
    submit(owner, "Turn on two-factor authentication")
    expect(page.locator(".recovery-code").first).to_be_visible()
    check(owner, "recovery codes shown once")
    page.goto("/")
    page.get_by_label("Switch organization").select_option(label="Globex")
    submit(owner, "Switch")
    for path in ("/settings/security/ip-allowlist/", "/settings/authentication/", "/settings/access/policies/"):
        owner.errors.clear()
        page.goto(path)
        check(owner, "a team-plan organization")

    admin = Visitor(signed_in_page(new_page, "admin"))
    totp_device(world["members"]["admin"].user)
    new_policy(admin)
    expect(admin.page.locator('input[name="twig_step_up_code"]')).to_be_visible()
    check(admin, "the step-up prompt")

    user = Visitor(signed_in_page(new_page, "user"))
    user.page.goto("/agents/")
    user.page.locator(f'[data-agent-id="{world["agent"]}"]').get_by_label("Question").fill("How long do refunds take?")
    submit(user, "Ask Support bot")
    expect(user.page.get_by_test_id("agent-answer")).to_be_visible()
    check(user, "an agent's answer")

    manager = Visitor(signed_in_page(new_page, "manager"))
    manager.page.goto("/data-sources/")
    submit(manager, "Add data source")
    check(manager, "a data source without a name")

    initech = make_org("initech", name="Initech", plan="enterprise")
    update_org_settings(org=initech, patch={"ipAllowlist": ["203.0.113.0/24"]})
    make_member(initech, "user", email="ivy@initech.test")
    outside = Visitor(new_page())
    sign_in(outside.page, "ivy@initech.test", PASSWORD)
    assert outside.status == 403, outside.status  # the "not from this network" page
    check(outside, "a member outside the organization's IP allowlist")

    make_user(email="nobody@example.test")
    lone = Visitor(new_page())
    sign_in(lone.page, "nobody@example.test", PASSWORD)
    check(lone, "home, in no organization")
    for path in ("/settings/api-keys/", "/agents/", "/data-sources/", "/settings/security/", "/settings/sessions/"):
        lone.page.goto(path)
        check(lone, "in no organization")
    assert not problems, "\n".join(problems)


def test_routes_that_are_not_pages_answer_as_listed(world: World, client: Any) -> None:
    from twig_auth.authz.models import Grant
    from twig_auth.core import clock

    grant = Grant.objects.create(org=world["org"], resource_type="agent", resource_id=world["agent"], action="use",
                                 user=world["members"]["user"].user, created_at=clock.now())
    client.force_login(world["members"]["super_admin"].user, backend="twig_auth.passwords.backends.EmailBackend")
    ids = {"grant": grant.pk, "policy": world["policy"], "agent": world["agent"], "source": world["source"]}
    wrong = {}
    for name, (path, status, _why) in NOT_PAGES.items():
        response = client.get(path.format(**ids))
        if response.status_code != status:
            wrong[name] = (path.format(**ids), response.status_code, status)
    assert not wrong, f"(path, got, expected): {wrong}"


# --- the gallery ----------------------------------------------------------------------------------------------


def _expect_text(expected: Expect) -> str:
    if expected is LOGIN:
        return "→ sign in"
    if isinstance(expected, Goes):
        return f"→ `{expected.path}`"
    return str(expected)


def gallery() -> str:
    """docs/pages.md, from PAGES and NOT_PAGES."""
    lines = [
        "# Pages",
        "",
        "Every server-rendered page of twig_auth and the reference project, as opened by "
        "`tests/e2e/test_every_page.py` in Chromium for each role: anonymous, user, manager, admin and super admin "
        "(“owner” in file names). On each page the test checks the status every role gets, that no server error or "
        "console error shows, that every form control has a label and every link and button a name (containing its "
        "visible label), that there is one `<h1>`, that `<html>` has a `lang` and that no `id` is used twice; axe-core "
        "checks the WCAG 2.1 A and AA rules. A route added to the URLconf without an entry in the test fails it.",
        "",
        "This page is generated: after changing pages, run "
        "`TWIG_UPDATE_SCREENS=1 .venv/bin/pytest tests/e2e/test_every_page.py` and commit `docs/pages.md` and "
        "`docs/screens/`. Screenshots are 1280 px wide (390 px for phones), cut at "
        f"{MAX_SHOT_HEIGHT} px.",
        "",
        "Statuses: `200` the page; `403` the “Not allowed” page; `→ sign in` the sign-in page, which comes back "
        "afterwards; `→ /path/` a redirect there.",
        "",
    ]
    known = routes()
    sections: dict[str, list[Page]] = {}
    for page in (*PAGES, NOT_FOUND):
        sections.setdefault(page.section, []).append(page)
    for section, pages in sections.items():
        lines += [f"## {section}", ""]
        for page in pages:
            url = f"/{known[page.name]}" if page.name in known else page.url
            lines += [f"### {page.title}", "", f"`{url}` — {page.who}.{' ' + page.note if page.note else ''}", ""]
            lines += ["| " + " | ".join(r.replace("_", " ") for r in ROLES) + " |",
                      "|" + "---|" * len(ROLES),
                      "| " + " | ".join(_expect_text(page.expect[r]) for r in ROLES) + " |", ""]
            for role in page.shot_roles():
                lines += [f"![{page.title}, as {role.replace('_', ' ')}](screens/{page.shot_name(role)})", ""]
            for role in page.phone:
                lines += [f"![{page.title} on a phone, as {role.replace('_', ' ')}]"
                          f"(screens/{page.shot_name(role, phone=True)})", ""]
    lines += ["## Routes that are not pages", "",
              "Opened by GET as the super admin, they answer as listed (checked by the same test).", "",
              "| Route | GET answers | Why |", "|---|---|---|"]
    for name, (_path, status, why) in NOT_PAGES.items():
        lines.append(f"| `/{known.get(name, '?')}` | {status} | {why} |")
    return "\n".join(lines) + "\n"


def shot_files() -> set[str]:
    names = set()
    for page in (*PAGES, NOT_FOUND):
        names |= {page.shot_name(role) for role in page.shot_roles()}
        names |= {page.shot_name(role, phone=True) for role in page.phone}
    return names


def test_the_gallery_is_up_to_date() -> None:
    """docs/pages.md and docs/screens/ match PAGES (TWIG_UPDATE_SCREENS=1 regenerates both)."""
    if UPDATE:
        GALLERY.write_text(gallery())
    assert GALLERY.read_text() == gallery(), "docs/pages.md is stale: run with TWIG_UPDATE_SCREENS=1"
    on_disk = {p.name for p in DOCS_SCREENS.glob("*.png")}
    assert not shot_files() - on_disk, f"missing screenshots: {sorted(shot_files() - on_disk)}"
    assert not on_disk - shot_files(), f"screenshots of no page: {sorted(on_disk - shot_files())}"
