"""Password reset: the email, a link that works once, expires, and never reveals whether an account exists."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from unittest import mock

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail

from tests.conftest import PASSWORD
from tests.pages.conftest import field_errors, text

URL = "/password/reset/"
NEW = "Brand-New-Pass-7?"
INVALID = "This reset link is invalid or has already been used"


def request_link(client: Any, email: str = "owner@acme.test") -> str:
    response = client.post(URL, {"email": email})
    assert response.status_code == 302
    assert response["Location"] == "/password/reset/sent/"
    assert len(mail.outbox) == 1
    match = re.search(r"http://testserver(/password/reset/[^/\s]+/[^/\s]+/)", mail.outbox[0].body)
    assert match, mail.outbox[0].body
    return match.group(1)


def test_reset_page_renders(client: Any, db: None) -> None:
    response = client.get(URL)

    assert response.status_code == 200
    body = text(response)
    assert ">Reset your password</h1>" in body
    assert '<label for="id_email">Email</label>' in body
    assert '<button class="button button--primary button--block" type="submit">Send reset link</button>' in body


def test_known_email_gets_a_single_line_subject_and_a_working_link(client: Any, member: Any) -> None:
    link = request_link(client)

    message = mail.outbox[0]
    assert message.to == ["owner@acme.test"]
    assert message.subject == "Reset your Twig password"
    assert "owner@acme.test" in message.body
    assert "&#x27;" not in message.body and "&amp;" not in message.body  # plain text, not HTML-escaped

    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert ">Choose a new password</h1>" in text(form_page)
    set_password_url = form_page.redirect_chain[-1][0]

    done = client.post(set_password_url, {"new_password1": NEW, "new_password2": NEW}, follow=True)
    assert done.redirect_chain[-1][0] == "/password/reset/complete/"
    assert ">Your password has been reset</h1>" in text(done)
    member.refresh_from_db()
    assert member.check_password(NEW)


def test_reset_link_works_only_once(client: Any, member: Any) -> None:
    link = request_link(client)
    set_password_url = client.get(link)["Location"]
    client.post(set_password_url, {"new_password1": NEW, "new_password2": NEW})

    again = client.get(link, follow=True)

    assert again.status_code == 200
    assert INVALID in text(again)
    assert 'name="new_password1"' not in text(again)
    other_client_again = type(client)().get(link, follow=True)
    assert INVALID in text(other_client_again)


def test_reset_link_expires(client: Any, member: Any, settings: Any) -> None:
    link = request_link(client)
    later = PasswordResetTokenGenerator()._now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 1)

    with mock.patch.object(PasswordResetTokenGenerator, "_now", return_value=later):
        response = client.get(link, follow=True)

    assert INVALID in text(response)
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_link_still_valid_just_before_expiry(client: Any, member: Any, settings: Any) -> None:
    link = request_link(client)
    almost = PasswordResetTokenGenerator()._now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT - 5)

    with mock.patch.object(PasswordResetTokenGenerator, "_now", return_value=almost):
        response = client.get(link, follow=True)

    assert ">Choose a new password</h1>" in text(response)


def test_garbage_link_is_invalid_not_an_error(client: Any, db: None) -> None:
    response = client.get("/password/reset/Zm9v/abc-def/", follow=True)

    assert response.status_code == 200
    assert INVALID in text(response)
    assert 'href="/password/reset/">Request a new link</a>' in text(response)


def test_unknown_email_shows_the_same_sent_page_and_sends_nothing(client: Any, member: Any) -> None:
    known = client.post(URL, {"email": "owner@acme.test"}, follow=True)
    mail.outbox.clear()
    unknown = client.post(URL, {"email": "nobody@acme.test"}, follow=True)

    assert mail.outbox == []
    assert unknown.redirect_chain == known.redirect_chain == [("/password/reset/sent/", 302)]
    assert ">Check your email</h1>" in text(unknown)
    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip.sub("", text(unknown)) == strip.sub("", text(known))


def test_weak_new_password_on_the_reset_form_lists_every_rule(client: Any, member: Any) -> None:
    link = request_link(client)
    set_password_url = client.get(link)["Location"]

    response = client.post(set_password_url, {"new_password1": "abcdefgh", "new_password2": "abcdefgh"})

    assert response.status_code == 200
    errors = field_errors(response, "new_password1")
    assert "Add an uppercase letter." in errors
    assert "Add a digit." in errors
    assert "Add a special character such as ! ? # or %." in errors
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_bad_email_shows_a_field_error(client: Any, db: None) -> None:
    response = client.post(URL, {"email": "not-an-email"})

    assert response.status_code == 200
    assert field_errors(response, "email") == ["Enter a valid email address."]
    assert mail.outbox == []
