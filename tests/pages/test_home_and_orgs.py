"""The project home page, the organization chooser and the error pages."""

from __future__ import annotations

from typing import Any

from tests.pages.conftest import text
from twig_auth.orgs import services as org_services


def test_home_requires_sign_in(client: Any, db: None) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_home_shows_email_org_role_plan_and_links(client: Any, member: Any, logged_in: Any) -> None:
    logged_in(member)

    response = client.get("/")

    assert response.status_code == 200
    body = text(response)
    assert '<strong class="user-email">owner@acme.test</strong>' in body
    assert '<dd class="org-name">Acme</dd>' in body
    assert "Super admin" in body
    assert "Enterprise" in body
    assert 'href="/password/change/"' in body
    assert 'href="/api/docs"' in body
    assert '<form method="post" action="/logout/">' in body
    assert 'href="/admin/"' not in body  # not staff
    assert 'name="org"' not in body  # one org: no switcher


def test_home_links_the_admin_for_staff(client: Any, member: Any, logged_in: Any) -> None:
    member.is_staff = True
    member.save(update_fields=["is_staff"])
    logged_in(member)

    assert 'href="/admin/">Admin</a>' in text(client.get("/"))


def test_member_of_several_orgs_gets_a_switcher(client: Any, member: Any, logged_in: Any, make_org: Any) -> None:
    globex = make_org("globex", name="Globex", plan="team")
    org_services.add_member(org=globex, user=member, role="manager")
    logged_in(member)

    body = text(client.get("/"))

    assert '<select id="home-org" name="org">' in body
    assert f'<option value="{globex.pk}">Globex</option>' in body

    switched = client.post("/organizations/choose/", {"org": globex.pk, "next": "/"}, follow=True)
    body = text(switched)
    assert '<dd class="org-name">Globex</dd>' in body
    assert "Manager" in body
    assert "You are now working in Globex." in body


def test_choose_page_lists_each_org_with_role_and_plan(client: Any, member: Any, logged_in: Any,
                                                      make_org: Any) -> None:
    org_services.add_member(org=make_org("globex", name="Globex", plan="team"), user=member, role="admin")
    logged_in(member)

    response = client.get("/organizations/choose/")

    assert response.status_code == 200
    body = text(response)
    assert ">Choose an organization</h1>" in body
    assert "Admin · Team plan" in body
    assert "Super admin · Enterprise plan" in body


def test_choosing_a_foreign_org_is_refused_with_a_message(client: Any, member: Any, logged_in: Any,
                                                         make_org: Any) -> None:
    foreign = make_org("initech", name="Initech")
    logged_in(member)

    response = client.post("/organizations/choose/", {"org": foreign.pk})

    assert response.status_code == 403
    assert 'role="alert">You are not a member of that organization.</div>' in text(response)


def test_org_names_are_html_escaped(client: Any, make_org: Any, make_member: Any, logged_in: Any) -> None:
    evil = make_org("evil", name='<script>alert("x")</script>')
    membership = make_member(evil, "user")
    org_services.add_member(org=make_org("other", name="Other"), user=membership.user, role="user")
    logged_in(membership.user)

    for url in ["/", "/organizations/choose/"]:
        body = text(client.get(url))
        assert "<script>alert" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_unknown_page_renders_the_404_template(client: Any, db: None) -> None:
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert "Page not found" in text(response)
    assert "twig_auth/twig.css" in text(response)


def test_server_error_page_renders_without_a_request_context(rf: Any) -> None:
    from twig_project.views import server_error

    response = server_error(rf.get("/somewhere/"))

    assert response.status_code == 500
    assert "Something went wrong" in text(response)
    assert "Traceback" not in text(response)
