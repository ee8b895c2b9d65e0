"""/api/data-sources: list, create, show, change, delete, sync; no PUT; org isolation and role rules."""

from __future__ import annotations

import pytest

from twig_auth.audit.models import AuditEvent
from twig_project.workspace.models import DataSource

from .helpers import assert_error

pytestmark = pytest.mark.django_db


def test_manager_connects_an_idle_data_source(api_as, org, members):
    response = api_as("manager").post("/api/data-sources", {"name": "Docs", "kind": "notion",
                                                             "config": {"workspace": "eng"}})
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("src_")
    assert (body["kind"], body["status"], body["last_synced_at"]) == ("notion", "idle", None)
    assert body["created_by"] == "manager@acme.test"
    source = DataSource.objects.get(pk=body["id"])
    assert source.org == org and source.config == {"workspace": "eng"}
    assert AuditEvent.objects.filter(event="DATA_SOURCE_CREATED", target_id=source.pk).count() == 1


def test_unknown_kind_is_invalid(api_as, members):
    body = assert_error(api_as("manager").post("/api/data-sources", {"name": "X", "kind": "ftp"}), 400, "invalid")
    assert list(body["errors"]) == ["kind"]
    assert DataSource.objects.count() == 0


def test_members_list_only_their_orgs_sources(api_as, org, members, other_org, make_source, grant):
    mine = make_source(org, "Ours")
    make_source(other_org, "Theirs")
    assert api_as("user").get("/api/data-sources").json() == []  # least privilege: nothing without a grant
    grant(members["user"], "view", "data_source:*")
    response = api_as("user").get("/api/data-sources")
    assert response.status_code == 200
    assert [s["id"] for s in response.json()] == [mine.pk]
    assert api_as("user").get(f"/api/data-sources/{mine.pk}").json()["name"] == "Ours"


def test_source_of_another_org_is_not_found(api_as, members, other_org, make_source):
    theirs = make_source(other_org, "Theirs")
    api = api_as("super_admin")
    for response in (api.get(f"/api/data-sources/{theirs.pk}"),
                     api.patch(f"/api/data-sources/{theirs.pk}", {"name": "x"}),
                     api.delete(f"/api/data-sources/{theirs.pk}"),
                     api.post(f"/api/data-sources/{theirs.pk}/sync")):
        assert_error(response, 404, "not_found")
    theirs.refresh_from_db()
    assert (theirs.name, theirs.status) == ("Theirs", "idle")


def test_patch_renames_and_reconfigures(api_as, org, members, make_source):
    source = make_source(org, "Old", config={"url": "https://a.test"})
    response = api_as("admin").patch(f"/api/data-sources/{source.pk}", {"name": "New", "config": {"url": "https://b.test"}})
    assert response.status_code == 200
    source.refresh_from_db()
    assert (source.name, source.config) == ("New", {"url": "https://b.test"})


def test_kind_cannot_change(api_as, org, members, make_source):
    source = make_source(org, "Site", kind="website")
    body = assert_error(api_as("manager").patch(f"/api/data-sources/{source.pk}", {"kind": "slack"}), 400, "invalid")
    assert list(body["errors"]) == ["kind"]
    source.refresh_from_db()
    assert source.kind == "website"
    # repeating the current kind is harmless
    assert api_as("manager").patch(f"/api/data-sources/{source.pk}", {"kind": "website"}).status_code == 200


def test_put_is_not_allowed_on_data_sources(api_as, org, members, make_source):
    source = make_source(org, "Site")
    response = api_as("manager").put(f"/api/data-sources/{source.pk}", {"name": "x", "kind": "website"})
    assert_error(response, 405, "method_not_allowed")
    assert "PUT" not in response["Allow"] and "PATCH" in response["Allow"]


def test_sync_marks_the_source_synced(api_as, org, members, make_source):
    source = make_source(org, "Site")
    response = api_as("manager").post(f"/api/data-sources/{source.pk}/sync")
    assert response.status_code == 200
    assert response.json()["status"] == "synced" and response.json()["last_synced_at"]
    source.refresh_from_db()
    assert source.status == "synced" and source.last_synced_at is not None
    assert AuditEvent.objects.filter(event="DATA_SOURCE_SYNCED", target_id=source.pk).count() == 1


def test_delete_removes_the_source(api_as, org, members, make_source):
    source = make_source(org, "Site")
    assert api_as("manager").delete(f"/api/data-sources/{source.pk}").status_code == 204
    assert not DataSource.objects.filter(pk=source.pk).exists()


@pytest.mark.parametrize("method, path, data", [
    ("post", "/api/data-sources", {"name": "New", "kind": "file"}),
    ("patch", "/api/data-sources/{id}", {"name": "Renamed"}),
    ("delete", "/api/data-sources/{id}", None),
    ("post", "/api/data-sources/{id}/sync", None),
])
def test_plain_user_cannot_change_data_sources(api_as, org, members, make_source, grant, method, path, data):
    source = make_source(org, "Site")
    grant(members["user"], "view", source)  # sees it: changing it is refused, not hidden
    kwargs = {} if data is None else {"data": data}
    body = assert_error(getattr(api_as("user"), method)(path.format(id=source.pk), **kwargs), 403,
                        "permission_denied")
    if path == "/api/data-sources":
        assert "manager" in body["detail"]
    else:
        denied = AuditEvent.objects.get(event="AUTHORIZATION_DENIED")
        assert denied.details["reason"] == body["detail"] and denied.details["resource"] == f"data_source:{source.pk}"
    source.refresh_from_db()
    assert (source.name, source.status) == ("Site", "idle")
    assert DataSource.objects.count() == 1
