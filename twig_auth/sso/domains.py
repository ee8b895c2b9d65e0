"""Verified email domains: add one, prove it with a DNS TXT record, find the org of an email address.

A domain routes "Sign in with SSO" only once verified, and one domain can be verified by one org only
(a database constraint backs this up under concurrent verifications).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, PermissionDenied
from twig_auth.orgs.models import Organization
from twig_auth.sso import dns
from twig_auth.sso.models import SsoDomain, normalize_domain, validate_domain

RECORD_PREFIX = "_twig-verification"
VALUE_PREFIX = "twig-verification="
MAX_DOMAINS_PER_ORG = 100


def record_name(domain: SsoDomain) -> str:
    """The DNS name the TXT record goes at (an underscore label, so it never collides with a real host)."""
    return f"{RECORD_PREFIX}.{domain.domain}"


def record_value(domain: SsoDomain) -> str:
    return f"{VALUE_PREFIX}{domain.verification_token}"


def instructions(domain: SsoDomain) -> dict[str, str]:
    """What the org admin adds at their DNS host."""
    return {"type": "TXT", "name": record_name(domain), "value": record_value(domain)}


def clean_domain(org: Organization, domain: Any) -> str:
    """Return ``domain`` normalized, or raise :class:`InvalidInput` (field ``domain``) / :class:`PermissionDenied`
    (SSO is an enterprise feature) / :class:`Conflict` (the org already has it)."""
    if not isinstance(domain, str):
        raise InvalidInput({"domain": ["Enter a domain name such as example.com."]})
    try:
        validate_domain(domain)
    except ValidationError as exc:
        raise InvalidInput({"domain": list(exc.messages)}) from None
    if not org.is_enterprise:
        raise PermissionDenied("SSO domains require the enterprise plan.", fields=["domain"])
    name = normalize_domain(domain)
    if SsoDomain.objects.filter(org=org, domain=name).exists():
        raise Conflict(f"{name} is already in this organization's domains.")
    if SsoDomain.objects.filter(org=org).count() >= MAX_DOMAINS_PER_ORG:
        raise Conflict(f"An organization can claim at most {MAX_DOMAINS_PER_ORG} domains.")
    return name


def add_domain(*, org: Organization, domain: Any, context: RequestContext | None = None) -> SsoDomain:
    """Claim ``domain`` for ``org`` (unverified) with a fresh challenge token; see :func:`instructions`.

    Whether another org has verified it is not said here: only after the DNS proof (in :func:`verify_domain`),
    so nobody learns which domains are customers here just by typing them in.
    """
    name = clean_domain(org, domain)
    try:
        with transaction.atomic():
            claimed = SsoDomain.objects.create(org=org, domain=name)
            record(Event.SSO_DOMAIN_ADDED, context=context, org=org, target=claimed, details={"domain": name})
    except IntegrityError:  # the same org adding it twice at once
        raise Conflict(f"{name} is already in this organization's domains.") from None
    return claimed


def verify_domain(*, domain: SsoDomain, context: RequestContext | None = None) -> SsoDomain:
    """Look up the TXT record and mark ``domain`` verified when one of its values is the expected one.

    The lookup runs outside the transaction (a slow DNS server must not hold a row lock). Raise
    :class:`InvalidInput` (field ``domain``) naming what is wrong: no such name, no TXT record, a timeout, or
    TXT records without the token; :class:`Conflict` when another org verified the domain first.
    """
    if domain.verified_at is not None:
        return domain
    name = record_name(domain)
    try:
        values = dns.txt_values(name, nameservers=app_settings.SSO_DNS_NAMESERVERS)
    except dns.DnsLookupFailed as exc:
        raise InvalidInput({"domain": [exc.message]}, exc.message) from None
    expected = record_value(domain)
    if expected not in (v.strip() for v in values):
        has_ours = any(v.strip().startswith(VALUE_PREFIX) for v in values)
        message = (f"The TXT record at {name} has another token; set it to {expected}." if has_ours
                   else f"No TXT record at {name} has the value {expected}.")
        raise InvalidInput({"domain": [message]}, message)
    taken = Conflict(f"{domain.domain} is already verified by another organization.")
    try:
        with transaction.atomic():
            locked = SsoDomain.objects.select_for_update().get(pk=domain.pk)
            if locked.verified_at is not None:
                return locked
            if SsoDomain.objects.verified().filter(domain=locked.domain).exclude(org_id=locked.org_id).exists():
                raise taken
            locked.verified_at = clock.now()
            locked.save(update_fields=["verified_at"])
            record(Event.SSO_DOMAIN_VERIFIED, context=context, org=locked.org, target=locked,
                   details={"domain": locked.domain})
    except IntegrityError:  # another org's verification committed between our check and our write
        raise taken from None
    domain.verified_at = locked.verified_at
    return locked


def org_for_email(email: str) -> Organization | None:
    """Return the org whose VERIFIED domain is exactly the email's domain, or None.

    Subdomains do not count: proving ``example.com`` says nothing about who runs ``eu.example.com`` (a
    subsidiary, a customer tenant, a hosting provider's users). An org with subdomain users verifies each.
    """
    if not isinstance(email, str) or email.count("@") < 1:
        return None
    domain = normalize_domain(email.rpartition("@")[2])
    if not domain:
        return None
    found = SsoDomain.objects.verified().filter(domain=domain).select_related("org").first()
    return found.org if found is not None else None
