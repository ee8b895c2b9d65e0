"""Public signals of twig_auth. Named in the past tense; sent after the transaction's work is done.

Each is sent with ``sender`` set to the model class concerned and the keyword arguments listed.
"""

from __future__ import annotations

from django.dispatch import Signal

# A member was added to an organization. Arguments: membership, context.
member_added = Signal()
# A member's role changed. Arguments: membership, old_role, new_role, context.
role_changed = Signal()
# A member left or was removed. Arguments: membership, context.
member_removed = Signal()
# A member was deactivated in one org (kept, but no credential acts as them). Arguments: membership, reason
# ("inactive" | "manual"), context.
member_deactivated = Signal()
# A deactivated member was reactivated. Arguments: membership, context.
member_reactivated = Signal()
# A group was created, changed or deleted. Arguments: group, action ("created"|"updated"|"deleted"), context.
group_changed = Signal()
# Group membership changed. Arguments: group, membership, action ("added"|"removed"|"role_changed"), context.
group_membership_changed = Signal()
# A password login succeeded. Arguments: user, context.
login_succeeded = Signal()
# A password login failed. Arguments: email, reason, context.
login_failed = Signal()
# An account was locked by too many failures. Arguments: email, until, context.
account_locked = Signal()
# An account was unlocked by an operator. Arguments: email, context.
account_unlocked = Signal()
# An audit event was stored. Arguments: event.
audit_event_recorded = Signal()
# An org's settings document changed. Arguments: org, changed (sorted list of top-level keys), context.
org_settings_changed = Signal()
# A second-factor device was confirmed. Arguments: user, device, context.
mfa_enrolled = Signal()
# A device was removed, or all of a user's devices reset by an admin. Arguments: user, device (None on reset),
# context.
mfa_removed = Signal()
# A second factor was verified. Arguments: user, method ("totp" | "sms" | "recovery"), purpose, context.
mfa_verified = Signal()
# An org's external provider key was added, replaced or deleted. Arguments: key (an ExternalApiKey: show
# key.masked, never key.secret), action ("added"|"replaced"|"deleted"), context.
external_key_changed = Signal()
# A connector connection was stored (first time or again). Arguments: token (an OAuthToken), reconnected.
connector_connected = Signal()
# A connector connection was disconnected (its tokens revoked and deleted). Arguments: org, provider, subject.
connector_disconnected = Signal()
# A security alert was raised (once per org, kind and subject per ALERT_DEDUPE_SECONDS) and mailed to the org's
# admins. Arguments: org (None: an operator alert, mailed to settings.ADMINS), kind, subject, event (the
# AuditEvent that raised it), count (events in the window, for thresholds), recipients (list of emails).
security_alert_raised = Signal()
