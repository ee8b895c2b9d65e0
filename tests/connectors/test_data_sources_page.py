"""The data source API's ``connection_status`` and the /data-sources/ page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from twig_auth.connectors.models import OAuthToken
from twig_project.workspace.models import DataSource

from .conftest import connect, signed_in

pytestmark = pytest.mark.django_db


def test_connection_status_in_the_api(web, org, configured, make_source, api):
    drive = make_source(org)
    chat = make_source(org, kind="slack", name="Chat")
    site = make_source(org, kind="website", name="Site")
    connect(web, drive)
    failed = connect(web, chat)
    OAuthToken.objects.filter(pk=failed.pk).update(status="connection_failed", access_token="", refresh_token="")
    listed = {s["id"]: s["connection_status"] for s in api.get("/api/data-sources").json()}
    assert listed == {drive.pk: "connected", chat.pk: "connection_failed", site.pk: None}
    assert api.get(f"/api/data-sources/{drive.pk}").json()["connection_status"] == "connected"
    fresh = api.post("/api/data-sources", {"name": "New", "kind": "google_drive"})
    assert fresh.status_code == 201 and fresh.json()["connection_status"] == "not_connected"
    renamed = api.patch(f"/api/data-sources/{drive.pk}", {"name": "Renamed"})
    assert renamed.json()["connection_status"] == "connected"


def test_listing_costs_no_query_per_source(web, org, configured, make_source, api):
    make_source(org)
    api.get("/api/data-sources")  # warm the caches of the first request
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/api/data-sources").json()) == 1
    for index in range(4):
        connect(web, make_source(org, name=f"Drive {index}"))
        make_source(org, kind="notion", name=f"Notes {index}")
    with CaptureQueriesContext(connection) as nine:
        assert len(api.get("/api/data-sources").json()) == 9
    assert len(nine) == len(one)


def test_the_schema_documents_connection_status(api):
    schema = api.get("/api/schema", HTTP_ACCEPT="application/json").json()
    schemas = schema["components"]["schemas"]
    prop = schemas["DataSource"]["properties"]["connection_status"]
    assert prop["nullable"] is True and prop["readOnly"] is True
    enum = schemas[prop["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert enum == ["not_connected", "connected", "connection_failed"]


def test_the_page_lists_sources_with_their_buttons(web, org, configured, make_source):
    drive = make_source(org)
    make_source(org, kind="slack", name="Chat")
    make_source(org, kind="website", name="Site")
    connect(web, drive)
    page = web.get("/data-sources/")
    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    assert html.count(">Disconnect<") == 1 and html.count(">Connect<") == 1
    assert "No connection needed" in html and html.count(">Sync now<") == 2  # the site and the connected drive
    assert 'data-connection="connected"' in html and 'data-connection="not_connected"' in html
    assert '<label for="id_name">Name</label>' in html and '<label for="id_kind">Kind</label>' in html
    assert "Data sources" in web.get("/").content.decode()


def test_managers_add_sources_on_the_page(web, org):
    response = web.post("/data-sources/", {"name": "Drive", "kind": "google_drive"})
    assert response.status_code == 302
    source = DataSource.objects.get(org=org)
    assert (source.name, source.kind, source.status) == ("Drive", "google_drive", "idle")
    assert b"Connect it to give Twig access" in web.get("/data-sources/").content
    bad = web.post("/data-sources/", {"name": "", "kind": "ftp"})
    assert bad.status_code == 400 and b"field__errors" in bad.content and DataSource.objects.count() == 1


def test_plain_members_see_only_what_they_may(org, configured, make_source, make_member, grant_view):
    drive = make_source(org)
    hidden = make_source(org, name="Secret drive")
    user = make_member(org, "user", email="user@acme.test")
    browser = signed_in(user)
    page = browser.get("/data-sources/").content.decode()
    assert "No data sources yet" in page and "Add a data source" not in page
    grant_view(user, drive)
    page = browser.get("/data-sources/").content.decode()
    assert "Team drive" in page and hidden.name not in page and ">Connect<" not in page
    assert browser.post("/data-sources/", {"name": "X", "kind": "website"}).status_code == 403
    grant_view(user, drive, "connect")
    assert ">Connect<" in browser.get("/data-sources/").content.decode()


def test_sync_on_the_page_reports_a_failed_connection(web, org, configured, make_source):
    source = make_source(org)
    stored = connect(web, source)
    configured.revoke(stored.refresh_token)
    response = web.post(f"/data-sources/{source.pk}/sync/")
    assert response.status_code == 302
    page = web.get("/data-sources/").content.decode()
    assert "Connection failed — reconnect Team drive" in page and ">Reconnect<" in page
    assert 'data-connection="connection_failed"' in page


def test_sync_on_the_page(web, org, configured, make_source):
    source = make_source(org)
    connect(web, source)
    assert web.post(f"/data-sources/{source.pk}/sync/").status_code == 302
    assert b"Team drive is synced." in web.get("/data-sources/").content
    assert DataSource.objects.get(pk=source.pk).status == "synced"


def test_the_page_needs_sign_in_and_an_org(client, make_user):
    assert client.get("/data-sources/")["Location"].startswith("/login/")
    client.force_login(make_user(), backend="twig_auth.passwords.backends.EmailBackend")
    assert client.get("/data-sources/").status_code == 403
