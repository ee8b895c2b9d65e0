"""The Agents page (``/agents/``): the org's agents a member may view, each with its model setting ("use my key")
and an Ask form.

Thin, and the same rules as the API: ``view`` to see an agent, ``edit`` to change its model (as ``PATCH
/api/agents/{id}``), ``use`` to ask it (as ``POST /api/query``). The model form offers the org's own keys by
provider, shown masked (read from the stored mask: nothing is decrypted to draw the page); a provider without a key
is offered disabled, with the reason. Asking runs :func:`.services.ask`, then redirects to the page showing the
answer and who paid, so a reload never asks (and pays) twice.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from twig_auth.audit.services import record_access
from twig_auth.authz.decisions import authorize, authorized, require
from twig_auth.contrib.rest_framework.authz import hidden
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, PermissionDenied
from twig_auth.orgs.active import current_membership
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role
from twig_auth.providerkeys.services import keys_by_provider
from twig_auth.ratelimit.endpoints import apply_headers, wait_phrase
from twig_auth.ratelimit.principals import take_for_member
from twig_project.workspace import services
from twig_project.workspace.llm import LLMError
from twig_project.workspace.models import MODEL_NAME_MAX, QUESTION_MAX, Agent, Interaction
from twig_project.workspace.validation import PROVIDER_LABELS, PROVIDERS, bad_text, model_setting_problems
from twig_project.workspace.views import OPAQUE_ID

TEMPLATE = "workspace/agents.html"
KEYS_PAGE = "Settings → External API keys"
KEY_LABELS = {"openai": "OpenAI key", "anthropic": "Anthropic key", "custom": "custom endpoint key"}


class KeySelect(forms.Select):
    """A select whose options in :attr:`disabled_values` cannot be chosen."""

    def __init__(self, *args: Any, disabled_values: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disabled_values = disabled_values or set()

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


class ModelForm(forms.Form):
    """An agent's model: provider, model name, and which key pays (``platform``, or the org's key of a provider)."""

    provider = forms.ChoiceField(label="Model provider", choices=[(p, PROVIDER_LABELS[p]) for p in PROVIDERS])
    name = forms.CharField(label="Model name", required=False, max_length=MODEL_NAME_MAX, strip=True,
                           help_text="For example gpt-4o-mini or claude-3-5-haiku-latest. Empty for built-in answers.")
    key = forms.ChoiceField(label="API key")

    def __init__(self, *args: Any, org_keys: dict[str, Any], org_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.org_keys = org_keys
        choices = [("platform", "Twig's key")]
        missing: set[str] = set()
        for provider in ("openai", "anthropic", "custom"):
            key = org_keys.get(provider)
            if key is None:
                missing.add(provider)
                choices.append((provider, f"Use my {KEY_LABELS[provider]} (none added yet)"))
            else:
                choices.append((provider, f"Use my {KEY_LABELS[provider]} ({key.masked})"))
        field = self.fields["key"]
        field.choices = choices
        field.widget = KeySelect(choices=choices, disabled_values=missing)
        help_parts = ["With Twig's key, Twig pays; with yours, your organization's account does (a custom endpoint "
                      "works only with yours)."]
        if missing:
            names = ", ".join(PROVIDER_LABELS[p] if p != "custom" else "custom endpoint" for p in sorted(missing))
            help_parts.append(f"{org_name} has no key for: {names}; an admin adds keys on {KEYS_PAGE}.")
        field.help_text = " ".join(help_parts)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        provider, name, key = data.get("provider"), data.get("name"), data.get("key")
        if provider is None or name is None or key is None:
            return data
        if provider == "builtin":  # nothing else to choose: whatever the other fields say is dropped
            data.update(name="", key="platform", key_source="platform")
            return data
        data["key_source"] = key_source = "platform" if key == "platform" else "org"
        for problem in model_setting_problems(provider, name, key_source).get("name", []):
            self.add_error("name", problem)
        if key == "platform" and provider == "custom":
            self.add_error("key", "A custom endpoint is called only with your organization's key: choose “Use my "
                                  "custom endpoint key”.")
        elif key != "platform" and key != provider:
            self.add_error("key", f"Your {KEY_LABELS[key]} pays only for {PROVIDER_LABELS[key]} models: choose "
                                  f"Twig's key or your {KEY_LABELS[provider]}.")
        elif key != "platform" and key not in self.org_keys:
            self.add_error("key", f"There is no {KEY_LABELS[key]} yet: an admin adds it on {KEYS_PAGE}.")
        return data


class AskForm(forms.Form):
    question = forms.CharField(label="Question", max_length=QUESTION_MAX, strip=True,
                               widget=forms.Textarea(attrs={"rows": 2}))

    def clean_question(self) -> str:
        question: str = self.cleaned_data["question"]
        problem = bad_text(question)
        if problem:
            raise forms.ValidationError(problem)
        return question


def _no_org(request: HttpRequest) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html",
                  {"message": "Agents belong to an organization, and you are not a member of any organization yet. "
                              "Ask an administrator to invite you."}, status=403)


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html", {"message": message}, status=403)


def model_label(provider: str, name: str) -> str:
    return PROVIDER_LABELS[provider] if provider == "builtin" else f"{PROVIDER_LABELS[provider]} · {name}"


def paid_by_label(paid_by: str, provider: str, masked: str) -> str:
    """Say who pays: "your OpenAI key sk-…abcd", "Twig", or nobody (built-in answers)."""
    if paid_by == "org":
        return f"your {KEY_LABELS.get(provider, 'key')} {masked}".rstrip()
    if paid_by == "platform":
        return "Twig"
    return "nobody (built-in answers)"


def _agent(membership: Membership, pk: str) -> Agent:
    if not OPAQUE_ID.fullmatch(pk):
        raise Http404
    agent = Agent.objects.of_org(membership.org_id).select_related("org").filter(pk=pk).first()
    if agent is None:
        raise Http404
    return agent


def _require(request: HttpRequest, membership: Membership, agent: Agent, action: str) -> None:
    """Raise PermissionDenied (audited) when the member may not do ``action`` on ``agent``, and Http404 instead
    when they may not even view it (as the API: existence does not leak)."""
    context = RequestContext.from_request(request)
    try:
        require(membership, action, agent, context=context)
    except PermissionDenied as exc:
        refusal = getattr(exc, "decision", None)
        if refusal is not None and not hidden(refusal):  # e.g. outside the member's access window: said as it is
            raise
        if authorize(membership, "view", agent, context=context).allowed:
            raise
        raise Http404 from None


def _render(request: HttpRequest, membership: Membership, *, bound: dict[str, Any] | None = None,
            status: int = 200) -> HttpResponse:
    """Render the page; ``bound`` holds the submitted form (with its errors) or the ask error of one agent."""
    context = RequestContext.from_request(request)
    org = membership.org
    visible = authorized(membership, "view", Agent.objects.of_org(org.pk), context=context).order_by("name", "id")
    editable = set(authorized(membership, "edit", Agent.objects.of_org(org.pk), context=context)
                   .values_list("pk", flat=True))
    usable = set(authorized(membership, "use", Agent.objects.of_org(org.pk), context=context)
                 .values_list("pk", flat=True))
    org_keys = keys_by_provider(org)
    bound = bound or {}
    answer = _answer(request, membership)
    rows = []
    for agent in visible:
        mine = bound.get("agent") == agent.pk
        key_source = agent.key_source
        key_choice = agent.model_provider if key_source == "org" else "platform"
        model_form = (bound["model_form"] if mine and "model_form" in bound else
                      ModelForm(prefix=f"model-{agent.pk}", org_keys=org_keys, org_name=org.name,
                                initial={"provider": agent.model_provider, "name": agent.model_name,
                                         "key": key_choice}))
        ask_form = (bound["ask_form"] if mine and "ask_form" in bound else AskForm(prefix=f"ask-{agent.pk}"))
        org_key = org_keys.get(agent.model_provider) if key_source == "org" else None
        rows.append({
            "agent": agent,
            "model": model_label(agent.model_provider, agent.model_name),
            "pays": ("Nobody: built-in answers are free" if agent.model_provider == "builtin" else
                     "Twig" if key_source == "platform" else
                     f"Your {KEY_LABELS[agent.model_provider]} {org_key.masked}" if org_key else
                     f"Your {KEY_LABELS[agent.model_provider]} — none added yet"),
            "key_missing": key_source == "org" and org_key is None,
            "can_edit": agent.pk in editable,
            "can_use": agent.pk in usable,
            "model_form": model_form,
            "ask_form": ask_form,
            "ask_error": bound.get("ask_error") if mine else None,
            "answer": answer if answer is not None and answer["interaction"].agent_id == agent.pk else None,
        })
    return render(request, TEMPLATE, {"membership": membership, "org": org, "rows": rows, "keys_page": KEYS_PAGE,
                                      "is_admin": membership.has_role(Role.ADMIN)}, status=status)


def _answer(request: HttpRequest, membership: Membership) -> dict[str, Any] | None:
    """The interaction named by ``?answer=``: only the member's own, in the active org."""
    pk = request.GET.get("answer") or ""
    if not OPAQUE_ID.fullmatch(pk):
        return None
    interaction = (Interaction.objects.of_org(membership.org_id)
                   .filter(pk=pk, user_id=membership.user_id).first())
    if interaction is None:
        return None
    return {"interaction": interaction, "question": (interaction.input or {}).get("question", ""),
            "paid_by": paid_by_label(interaction.paid_by, interaction.provider, interaction.key_masked),
            "model": model_label(interaction.provider, interaction.model_name)}


@never_cache
@login_required
@require_GET
def agents(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return _no_org(request)
    return _render(request, membership)


@never_cache
@login_required
@require_POST
def change_model(request: HttpRequest, pk: str) -> HttpResponse:
    """Save an agent's model setting (``edit`` on the agent, like ``PATCH /api/agents/{id}``)."""
    membership = current_membership(request)
    if membership is None:
        return _no_org(request)
    agent = _agent(membership, pk)
    try:
        _require(request, membership, agent, "edit")
    except PermissionDenied as exc:
        return _forbidden(request, f"You cannot change the model of {agent.name}: {exc.detail}")
    org_keys = keys_by_provider(membership.org)
    form = ModelForm(request.POST, prefix=f"model-{agent.pk}", org_keys=org_keys, org_name=membership.org.name)
    if form.is_valid():
        data = form.cleaned_data
        changes = {"model_provider": data["provider"], "model_name": data["name"], "key_source": data["key_source"]}
        try:
            services.update_agent(agent=agent, changes=changes, context=RequestContext.from_request(request))
        except InvalidInput as exc:  # the form checks the same rules: only a race gets here
            for name, problems in exc.errors.items():
                for problem in problems:
                    form.add_error(name.removeprefix("model.") if name.removeprefix("model.") in form.fields
                                   else None, problem)
        else:
            label = model_label(changes["model_provider"], changes["model_name"])
            messages.success(request, f"{agent.name} now answers with {label}.")
            return HttpResponseRedirect(reverse("agents") + f"#agent-{agent.pk}")
    return _render(request, membership, bound={"agent": agent.pk, "model_form": form})


@never_cache
@login_required
@require_POST
def ask(request: HttpRequest, pk: str) -> HttpResponse:
    """Ask an agent a question (``use`` on the agent, like ``POST /api/query``); show the answer and who paid."""
    membership = current_membership(request)
    if membership is None:
        return _no_org(request)
    agent = _agent(membership, pk)
    try:
        _require(request, membership, agent, "use")
    except PermissionDenied as exc:
        return _forbidden(request, f"You cannot ask {agent.name}: {exc.detail}")
    form = AskForm(request.POST, prefix=f"ask-{agent.pk}")
    if not form.is_valid():
        return _render(request, membership, bound={"agent": agent.pk, "ask_form": form})
    # the member's execute bucket, shared with POST /api/query: the page is no way round the API's limit
    limit = take_for_member(user_id=request.user.pk, org_id=membership.org_id, scope="execute")
    if not limit.allowed:
        busy = f"You are asking too often. Try again in {wait_phrase(limit.retry_after)}."
        return apply_headers(_render(request, membership, bound={"agent": agent.pk, "ask_form": form,
                                                                 "ask_error": busy}, status=429), limit)
    try:
        interaction = services.ask(org=membership.org, agent=agent, question=form.cleaned_data["question"],
                                   context=RequestContext.from_request(request))
    except LLMError as exc:
        return _render(request, membership, bound={"agent": agent.pk, "ask_form": form, "ask_error": exc.detail})
    record_access(context=RequestContext.from_request(request), org=membership.org, action="use", target=agent,
                  credential="session", details={"kind": "query", "interaction": interaction.pk, "page": True})
    return HttpResponseRedirect(reverse("agents") + f"?answer={interaction.pk}#agent-{agent.pk}")
