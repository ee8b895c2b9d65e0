"""The sign-in and sign-out pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.pages.conftest import alert_text, field_errors, text

LOGIN = "/login/"


def test_login_page_renders_a_labelled_form(client: Any, db: None) -> None:
    response = client.get(LOGIN + "?next=/password/change/")

    assert response.status_code == 200
    body = text(response)
    assert "<h1 id=\"page-title\">Sign in to Twig</h1>" in body
    assert '<label for="id_email">Email</label>' in body
    assert '<label for="id_password">Password</label>' in body
    assert f'href="{reverse("twig_auth:password_reset")}">Forgot your password?</a>' in body
    assert '<input type="hidden" name="next" value="/password/change/">' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'autocomplete="current-password"' in body
    assert '<meta name="viewport"' in body
    assert "/static/twig_auth/twig.css" in body


def test_login_page_drops_an_offsite_next(client: Any, db: None) -> None:
    response = client.get(LOGIN + "?next=https://evil.test/steal")

    assert '<input type="hidden" name="next" value="/">' in text(response)
    assert "evil.test" not in text(response)


def test_correct_password_signs_in_and_follows_next(client: Any, member: Any) -> None:
    response = client.post(LOGIN, {"email": "owner@acme.test", "password": PASSWORD, "next": "/password/change/"})

    assert response.status_code == 302
    assert response["Location"] == "/password/change/"
    assert client.get("/").status_code == 200


def test_signed_in_user_visiting_login_goes_home(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.get(LOGIN)

    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize("email", ["owner@acme.test", "nobody@acme.test"])
def test_wrong_password_or_unknown_email_shows_one_human_message(client: Any, member: Any, email: str) -> None:
    response = client.post(LOGIN, {"email": email, "password": "Wrong-Horse-9!"})

    assert response.status_code == 200
    assert alert_text(response) == "Invalid email or password."
    body = text(response)
    assert f'value="{email}"' in body  # the email is kept
    assert "Wrong-Horse-9!" not in body  # the password is never echoed


def test_empty_form_shows_an_error_next_to_each_field(client: Any, db: None) -> None:
    response = client.post(LOGIN, {"email": "", "password": ""})

    assert response.status_code == 200
    assert field_errors(response, "email") == ["Enter your email address."]
    assert field_errors(response, "password") == ["Enter your password."]
    body = text(response)
    assert 'aria-invalid="true"' in body
    assert 'aria-describedby="id_email_error"' in body
    assert 'aria-describedby="id_password_error"' in body
    assert alert_text(response) == "Please fix the problems highlighted below."


def test_sixth_attempt_is_locked_with_403_and_retry_after(client: Any, member: Any) -> None:
    for _ in range(5):
        client.post(LOGIN, {"email": "owner@acme.test", "password": "Wrong-Horse-9!"})

    response = client.post(LOGIN, {"email": "owner@acme.test", "password": PASSWORD})

    assert response.status_code == 403
    assert 0 < int(response["Retry-After"]) <= 900
    assert "Too many failed sign-in attempts" in alert_text(response)
    assert client.get("/").status_code == 302  # not signed in


def test_per_ip_throttle_answers_429_with_a_message(client: Any, member: Any, settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "LOGIN_IP_RATE": "2/h"}  # hourly: no window edge mid-test
    for _ in range(2):
        client.post(LOGIN, {"email": "x@acme.test", "password": "Wrong-Horse-9!"})

    response = client.post(LOGIN, {"email": "owner@acme.test", "password": PASSWORD})

    assert response.status_code == 429
    assert 1700 <= int(response["Retry-After"]) <= 1800  # one token of 2/h: back in 30 minutes
    assert response["X-RateLimit-Remaining"] == "0"
    assert 'role="alert">Too many sign-in attempts. Try again in 30 minutes.' in text(response)


def test_logout_page_asks_for_confirmation_and_get_does_not_sign_out(client: Any, member: Any,
                                                                        logged_in: Any) -> None:
    logged_in(member)

    response = client.get("/logout/")

    assert response.status_code == 200
    body = text(response)
    assert '<form class="form" method="post" action="/logout/">' in body
    assert "owner@acme.test" in body
    assert client.get("/").status_code == 200


def test_logout_post_ends_the_session(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.post("/logout/", follow=True)

    assert response.redirect_chain == [("/login/", 302)]
    assert 'role="status">You are signed out.</div>' in text(response)
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"] == "/login/?next=/"


def test_logout_page_for_an_anonymous_visitor_offers_sign_in(client: Any, db: None) -> None:
    response = client.get("/logout/")

    assert response.status_code == 200
    assert "You are not signed in." in text(response)
