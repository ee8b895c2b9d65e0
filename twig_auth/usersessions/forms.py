"""Forms of the sessions and security settings pages. They shape input only; the org services validate."""

from __future__ import annotations

import re
from typing import Any

from django import forms

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
UNIT_CHOICES = [("minutes", "Minutes"), ("hours", "Hours"), ("days", "Days")]
BIG = 10**12  # far beyond every policy bound; keeps hostile numbers out of arithmetic and JSON

# dotted settings path -> (form field, how the form shows the value: seconds per unit, or None for plain)
FIELDS: dict[str, tuple[str, int | None]] = {
    "session.timeout": ("session_timeout", 1),
    "session.renewOnActivity": ("session_renew", None),
    "session.maxConcurrent": ("session_max_concurrent", None),
    "session.enforceIPBinding": ("session_ip_binding", None),
    "lockout.maxAttempts": ("lockout_max_attempts", None),
    "lockout.windowSeconds": ("lockout_window", 60),
    "lockout.lockSeconds": ("lockout_lock", 60),
    "mfa.requiredForAdmins": ("mfa_admins", None),
    "mfa.requiredForAll": ("mfa_all", None),
    "mfa.gracePeriodDays": ("mfa_grace_days", None),
}
RANGE_RE = re.compile(r"Must be between (\d+) and (\d+)\.")


def human_duration(seconds: int) -> str:
    """Return "5 minutes", "1 hour", "90 days"… for a whole number of seconds."""
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {name}{'' if n == 1 else 's'}"
    return f"{seconds} seconds"


def best_unit(seconds: int) -> str:
    for unit in ("days", "hours"):
        if seconds % UNITS[unit] == 0:
            return unit
    return "minutes"


def _number(label: str, help_text: str = "", **attrs: Any) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, help_text=help_text, min_value=-BIG, max_value=BIG,
        error_messages={"required": "Enter a number.", "invalid": "Enter a whole number.",
                        "min_value": "Enter a smaller number.", "max_value": "Enter a smaller number."},
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": "1", **attrs}))


def _check(label: str, help_text: str) -> forms.BooleanField:
    return forms.BooleanField(label=label, help_text=help_text, required=False)


class SecuritySettingsForm(forms.Form):
    """The org's ``session``, ``lockout`` and ``mfa`` policies, in friendly units."""

    session_timeout = _number("Sign users out after", "Idle time before a session ends (5 minutes to 90 days).",
                              min="1")
    session_timeout_unit = forms.ChoiceField(choices=UNIT_CHOICES, label="Unit")
    session_renew = _check("Renew on activity", "Each visit restarts the idle timer.")
    session_max_concurrent = _number("Concurrent sessions per user",
                                     "A new sign-in beyond the limit ends the oldest session (1–100).", min="1")
    session_ip_binding = _check("Bind sessions to an IP address",
                                "A session used from another IP address is ended and logged.")
    lockout_max_attempts = _number("Failed attempts before lockout", "Between 1 and 100.", min="1")
    lockout_window = _number("Counting window (minutes)", "Failures within this window count (1 minute to 24 hours).",
                             min="1")
    lockout_lock = _number("Lock duration (minutes)", "How long a locked account stays locked (1 minute to 7 days).",
                           min="1")
    mfa_admins = _check("Require MFA for admins", "Admins and super admins must use a second factor.")
    mfa_all = _check("Require MFA for everyone", "Every member must use a second factor.")
    mfa_grace_days = _number("Grace period (days)", "Days new members have to set up MFA (0–90).", min="0")

    @classmethod
    def initial_from(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """Return the form's initial data for an effective settings document."""
        session, lockout, mfa = doc["session"], doc["lockout"], doc["mfa"]
        unit = best_unit(session["timeout"])
        return {
            "session_timeout": session["timeout"] // UNITS[unit], "session_timeout_unit": unit,
            "session_renew": session["renewOnActivity"], "session_max_concurrent": session["maxConcurrent"],
            "session_ip_binding": session["enforceIPBinding"],
            "lockout_max_attempts": lockout["maxAttempts"], "lockout_window": lockout["windowSeconds"] // 60,
            "lockout_lock": lockout["lockSeconds"] // 60,
            "mfa_admins": mfa["requiredForAdmins"], "mfa_all": mfa["requiredForAll"],
            "mfa_grace_days": mfa["gracePeriodDays"],
        }

    def document(self) -> dict[str, dict[str, Any]]:
        """Return the full ``session``/``lockout``/``mfa`` document of the cleaned data (values in seconds)."""
        d = self.cleaned_data
        return {
            "session": {"timeout": d["session_timeout"] * UNITS[d["session_timeout_unit"]],
                        "renewOnActivity": d["session_renew"], "maxConcurrent": d["session_max_concurrent"],
                        "enforceIPBinding": d["session_ip_binding"]},
            "lockout": {"maxAttempts": d["lockout_max_attempts"], "windowSeconds": d["lockout_window"] * 60,
                        "lockSeconds": d["lockout_lock"] * 60},
            "mfa": {"requiredForAdmins": d["mfa_admins"], "requiredForAll": d["mfa_all"],
                    "gracePeriodDays": d["mfa_grace_days"]},
        }

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Attach ``update_org_settings`` errors ("session.timeout": [...]) to the matching fields, in words."""
        for path, messages in errors.items():
            name, unit = FIELDS.get(path, (None, None))
            for message in messages:
                match = RANGE_RE.fullmatch(message)
                if match and unit is not None:
                    lo, hi = (int(g) for g in match.groups())
                    message = f"Must be between {human_duration(lo)} and {human_duration(hi)}."
                self.add_error(name, message)

    def focus_first_error(self) -> None:
        for name, field in self.fields.items():
            if name in self.errors:
                field.widget.attrs["autofocus"] = True
                return


def changed(document: dict[str, dict[str, Any]], current: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the part of ``document`` that differs from the effective settings ``current``."""
    patch: dict[str, dict[str, Any]] = {}
    for section, values in document.items():
        diff = {k: v for k, v in values.items() if current.get(section, {}).get(k) != v}
        if diff:
            patch[section] = diff
    return patch
