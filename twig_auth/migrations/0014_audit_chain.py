"""The audit log's hash chains: ``seq``/``prev_hash``/``hash`` on every event, one head row per chain.

Existing events are chained here, per org (and the org-less ones as their own chain), in id order, with the same
canonical form and hash as :mod:`twig_auth.audit.chain` (imported: the format is part of the stored data, so it
cannot change without a migration that re-chains).
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

BATCH = 1000


def chain_existing_events(apps: Any, schema_editor: Any) -> None:
    from twig_auth.audit.chain import GENESIS, chain_key, compute_hash

    AuditEvent = apps.get_model("twig_auth", "AuditEvent")
    AuditChainHead = apps.get_model("twig_auth", "AuditChainHead")
    using = schema_editor.connection.alias
    events = AuditEvent.objects.using(using)
    org_ids = list(events.order_by().values_list("org_id", flat=True).distinct())
    for org_id in org_ids:
        rows = events.filter(org__isnull=True) if org_id is None else events.filter(org_id=org_id)
        seq, prev, last_id = 0, GENESIS, 0
        while True:
            batch = list(rows.filter(id__gt=last_id).order_by("id")[:BATCH])
            if not batch:
                break
            for row in batch:
                seq += 1
                row.seq, row.prev_hash = seq, prev
                row.hash = prev = compute_hash(row, prev)
            events.bulk_update(batch, ["seq", "prev_hash", "hash"])
            last_id = batch[-1].id
        AuditChainHead.objects.using(using).create(chain=chain_key(org_id), org_id=org_id, seq=seq, hash=prev,
                                                   anchor_seq=0, anchor_hash=GENESIS)


class Migration(migrations.Migration):
    dependencies = [
        ("twig_auth", "0013_oauth_tokens"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                ("chain", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("seq", models.BigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
                ("anchor_seq", models.BigIntegerField(default=0)),
                ("anchor_hash", models.CharField(max_length=64)),
                ("purged_at", models.DateTimeField(blank=True, null=True)),
                ("org", models.ForeignKey(blank=True, db_constraint=False, null=True,
                                          on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                          to="twig_auth.organization")),
            ],
            options={"db_table": "twig_audit_chain_heads"},
        ),
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", max_length=64,
                                   help_text="The hash of the chain's previous event (64 zeros first)."),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(default="", max_length=64,
                                   help_text="SHA-256 of this event's canonical JSON, prev_hash included."),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing_events, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(
                help_text="Position in its chain (the org's events, or the org-less ones): 1, 2, 3…"),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="event",
            field=models.CharField(choices=[('LOGIN_SUCCESS', 'Login Success'), ('LOGIN_FAILURE', 'Login Failure'), ('LOGOUT', 'Logout'), ('ACCOUNT_LOCKED', 'Account Locked'), ('ACCOUNT_UNLOCKED', 'Account Unlocked'), ('PASSWORD_CHANGED', 'Password Changed'), ('PASSWORD_RESET_REQUESTED', 'Password Reset Requested'), ('PASSWORD_RESET', 'Password Reset'), ('ORG_CREATED', 'Org Created'), ('ORG_SETTINGS_CHANGED', 'Org Settings Changed'), ('ORG_SWITCHED', 'Org Switched'), ('MEMBER_ADDED', 'Member Added'), ('MEMBER_REMOVED', 'Member Removed'), ('MEMBER_DEACTIVATED', 'Member Deactivated'), ('MEMBER_REACTIVATED', 'Member Reactivated'), ('ROLE_CHANGED', 'Role Changed'), ('GROUP_CREATED', 'Group Created'), ('GROUP_UPDATED', 'Group Updated'), ('GROUP_DELETED', 'Group Deleted'), ('GROUP_MEMBER_ADDED', 'Group Member Added'), ('GROUP_MEMBER_REMOVED', 'Group Member Removed'), ('GROUP_ROLE_CHANGED', 'Group Role Changed'), ('PERMISSION_GRANTED', 'Permission Granted'), ('PERMISSION_REVOKED', 'Permission Revoked'), ('API_KEY_CREATED', 'Api Key Created'), ('API_KEY_REVOKED', 'Api Key Revoked'), ('API_KEY_USED', 'Api Key Used'), ('API_KEY_UPDATED', 'Api Key Updated'), ('RESOURCE_ACCESS', 'Resource Access'), ('AUTHORIZATION_DENIED', 'Authorization Denied'), ('MFA_ENROLLED', 'Mfa Enrolled'), ('MFA_FAILURE', 'Mfa Failure'), ('MFA_REMOVED', 'Mfa Removed'), ('MFA_RESET', 'Mfa Reset'), ('MFA_RECOVERY_CODE_USED', 'Mfa Recovery Code Used'), ('MFA_RECOVERY_CODES_REGENERATED', 'Mfa Recovery Codes Regenerated'), ('SSO_FAILURE', 'Sso Failure'), ('IP_BLOCKED', 'Ip Blocked'), ('SESSION_REVOKED', 'Session Revoked'), ('TOKEN_REUSED', 'Token Reused'), ('AUDIT_PURGED', 'Audit Purged'), ('SECURITY_ALERT_SENT', 'Security Alert Sent'), ('AGENT_CREATED', 'Agent Created'), ('AGENT_UPDATED', 'Agent Updated'), ('AGENT_DELETED', 'Agent Deleted'), ('AGENT_DEPLOYED', 'Agent Deployed'), ('DATA_SOURCE_CREATED', 'Data Source Created'), ('DATA_SOURCE_UPDATED', 'Data Source Updated'), ('DATA_SOURCE_DELETED', 'Data Source Deleted'), ('DATA_SOURCE_SYNCED', 'Data Source Synced'), ('POLICY_CREATED', 'Policy Created'), ('POLICY_UPDATED', 'Policy Updated'), ('POLICY_DELETED', 'Policy Deleted'), ('SOD_RULE_ADDED', 'Sod Rule Added'), ('SOD_RULE_REMOVED', 'Sod Rule Removed'), ('ACCESS_WINDOW_CHANGED', 'Access Window Changed'), ('SSO_DOMAIN_ADDED', 'Sso Domain Added'), ('SSO_DOMAIN_VERIFIED', 'Sso Domain Verified'), ('SSO_CONNECTION_CREATED', 'Sso Connection Created'), ('SSO_CONNECTION_UPDATED', 'Sso Connection Updated'), ('EXTERNAL_KEY_ADDED', 'External Key Added'), ('EXTERNAL_KEY_REPLACED', 'External Key Replaced'), ('EXTERNAL_KEY_DELETED', 'External Key Deleted'), ('CONNECTOR_CONNECTED', 'Connector Connected'), ('CONNECTOR_CONNECT_FAILED', 'Connector Connect Failed'), ('CONNECTOR_REFRESHED', 'Connector Refreshed'), ('CONNECTOR_REFRESH_FAILED', 'Connector Refresh Failed'), ('CONNECTOR_DISCONNECTED', 'Connector Disconnected')], db_index=True, max_length=40),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(condition=models.Q(org__isnull=False), fields=("org", "seq"),
                                               name="twig_audit_org_seq"),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(condition=models.Q(org__isnull=True), fields=("seq",),
                                               name="twig_audit_orgless_seq"),
        ),
    ]
