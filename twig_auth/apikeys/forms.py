"""Forms of the API keys page. They shape input only; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from twig_auth.apikeys.scopes import ALL_SCOPES, Scope, allowed_for
from twig_auth.apikeys.services import MAX_NAME
from twig_auth.netaccess.forms import CidrLinesField

SCOPE_HELP = {
    Scope.READ: "List and read agents, data sources and interactions.",
    Scope.WRITE: "Create, change and delete agents and data sources.",
    Scope.EXECUTE: "Run queries and chats.",
    Scope.ADMIN: "Every endpoint, organization settings included.",
}

ENVIRONMENT_HELP = {
    "live": "For production traffic.",
    "test": "For development and CI; refused by a live deployment.",
}

ROLL_CHOICES = [
    (0, "Now: the old key stops working at once"),
    (3600, "In 1 hour"),
    (86400, "In 24 hours"),
    (7 * 86400, "In 7 days"),
]


class ScopeCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes that render the scopes the member's role cannot grant as disabled."""

    def __init__(self, *args: Any, allowed: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = allowed

    def create_option(self, name: str, value: Any, label: Any, selected: Any, index: int,
                      subindex: int | None = None, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if str(value) not in self.allowed:
            option["attrs"]["disabled"] = True
        option["help"] = SCOPE_HELP.get(value, "")
        option["allowed"] = str(value) in self.allowed
        return option


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME, help_text="Say where the key is used, e.g. “CI pipeline”.",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    scopes = forms.MultipleChoiceField(choices=Scope.choices, label="Scopes",
                                       error_messages={"required": "Choose at least one scope."})
    environment = forms.ChoiceField(choices=[("live", "Live"), ("test", "Test")], initial="live",
                                    widget=forms.RadioSelect)
    expires_at = forms.DateTimeField(
        required=False, label="Expires (optional)", help_text="Leave empty for a key that does not expire.",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    allowed_ips = CidrLinesField(
        label="Allowed IP ranges (optional)",
        help_text="One range per line, e.g. 203.0.113.0/24 or 2001:db8::/64; # starts a comment. Leave empty to "
                  "allow every address your organization's allowlist allows.")

    def __init__(self, *args: Any, role: str, enterprise: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not enterprise:  # per-key allowlists are an enterprise feature, like the org's own list
            del self.fields["allowed_ips"]
        self.allowed = allowed_for(role)
        scopes = self.fields["scopes"]
        scopes.widget = ScopeCheckboxes(allowed=self.allowed, choices=scopes.choices)
        scopes.initial = [s for s in ALL_SCOPES if s == Scope.READ and s in self.allowed]
        self.fields["expires_at"].widget.attrs["min"] = timezone.localtime().strftime("%Y-%m-%dT%H:%M")

    @property
    def denied_labels(self) -> list[str]:
        """Labels of the scopes the member's role cannot grant (explained next to the checkboxes)."""
        return [label for value, label in Scope.choices if value not in self.allowed]

    def environment_options(self) -> list[tuple[Any, str]]:
        return [(radio, ENVIRONMENT_HELP.get(radio.data["value"], "")) for radio in self["environment"]]

    def focus_first_error(self) -> None:
        """Autofocus the first invalid field, so the browser scrolls the errors into view after a POST."""
        for name, field in self.fields.items():
            if name in self.errors:
                field.widget.attrs["autofocus"] = True
                return

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Attach a service's field errors to the matching fields (unknown fields become form errors)."""
        for field, messages in errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


class ApiKeyRollForm(forms.Form):
    expires_in = forms.TypedChoiceField(choices=ROLL_CHOICES, coerce=int, initial=86400, widget=forms.RadioSelect,
                                        label="When should the old key stop working?")
