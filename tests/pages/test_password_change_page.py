"""The password change page shows the rules, every broken rule at once, and changes the password."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD
from tests.pages.conftest import field_errors, text

URL = "/password/change/"
NEW = "Brand-New-Pass-7?"


def test_anonymous_visitor_is_sent_to_sign_in(client: Any, db: None) -> None:
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/password/change/"


def test_page_shows_labels_and_the_password_rules(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.get(URL)

    assert response.status_code == 200
    body = text(response)
    assert ">Change your password</h1>" in body
    for field, label in [("old_password", "Old password"), ("new_password1", "New password"),
                         ("new_password2", "New password confirmation")]:
        assert f'<label for="id_{field}">{label}</label>' in body
    assert 'id="id_new_password1_helptext"' in body
    assert 'aria-describedby="id_new_password1_helptext"' in body
    assert ("At least 8 characters, with an uppercase letter, a lowercase letter, a digit and a special "
            "character.") in body


def test_weak_password_lists_every_broken_rule_at_once(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.post(URL, {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"})

    assert response.status_code == 200
    errors = field_errors(response, "new_password1")
    assert errors[:4] == ["Use at least 8 characters.", "Add an uppercase letter.", "Add a digit.",
                          "Add a special character such as ! ? # or %."]
    assert "Add a lowercase letter." not in errors
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_wrong_current_password_is_reported_on_its_field(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.post(URL, {"old_password": "nope", "new_password1": NEW, "new_password2": NEW})

    assert field_errors(response, "old_password") == ["Your current password is not correct."]


def test_mismatched_confirmation_is_reported(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.post(URL, {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW + "x"})

    assert field_errors(response, "new_password2") == ["The two password fields didn’t match."]


def test_good_password_is_changed_and_the_done_page_says_so(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.post(URL, {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
                           follow=True)

    assert response.redirect_chain == [("/password/change/done/", 302)]
    body = text(response)
    assert ">Password changed</h1>" in body
    assert "Your password was changed." in body
    member.refresh_from_db()
    assert member.check_password(NEW)
    assert client.get("/").status_code == 200  # this session survives the change
