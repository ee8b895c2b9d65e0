"""Access reviews and alerts: per-org member deactivation (``deactivated_at``, reason, ``reactivated_at``), the
per-org last login, and the alert deduplication table.

Existing memberships get ``last_login_at`` from their user's ``last_login`` (when the user model has one): the
best record of activity before this migration, so the first ``twig_deactivate_inactive`` run after an upgrade
does not take every member who has not signed in since as inactive since they joined.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def backfill_last_login(apps: Any, schema_editor: Any) -> None:
    User = apps.get_model(settings.AUTH_USER_MODEL)
    if not any(f.name == "last_login" for f in User._meta.get_fields()):
        return
    Membership = apps.get_model("twig_auth", "Membership")
    last = User.objects.filter(pk=OuterRef("user_id")).values("last_login")[:1]
    Membership.objects.filter(last_login_at__isnull=True).update(last_login_at=Subquery(last))


class Migration(migrations.Migration):

    dependencies = [
        ('twig_auth', '0014_audit_chain'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='membership',
            name='deactivated_at',
            field=models.DateTimeField(blank=True, help_text='Set while the member is deactivated in this org: no session, token or API key acts as them.', null=True),
        ),
        migrations.AddField(
            model_name='membership',
            name='deactivation_reason',
            field=models.CharField(blank=True, choices=[('inactive', 'Inactive'), ('manual', 'By an admin')], max_length=20),
        ),
        migrations.AddField(
            model_name='membership',
            name='last_login_at',
            field=models.DateTimeField(blank=True, help_text='Last sign-in into this organization (password, token or SSO).', null=True),
        ),
        migrations.AddField(
            model_name='membership',
            name='reactivated_at',
            field=models.DateTimeField(blank=True, help_text='Last reactivation; inactivity is counted from it.', null=True),
        ),
        migrations.CreateModel(
            name='SecurityAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64, unique=True)),
                ('kind', models.CharField(max_length=40)),
                ('subject', models.CharField(help_text='The account (email) or IP address the alert is about.', max_length=254)),
                ('first_sent_at', models.DateTimeField()),
                ('last_sent_at', models.DateTimeField(db_index=True)),
                ('sent_count', models.PositiveIntegerField(default=1)),
                ('suppressed', models.PositiveIntegerField(default=0, help_text='Alerts held back since the last one was sent.')),
                ('org', models.ForeignKey(blank=True, help_text='None: an operator alert (mailed to settings.ADMINS).', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='twig_auth.organization')),
            ],
            options={
                'db_table': 'twig_security_alerts',
                'ordering': ['-last_sent_at'],
            },
        ),
        migrations.RunPython(backfill_last_login, migrations.RunPython.noop),
    ]
