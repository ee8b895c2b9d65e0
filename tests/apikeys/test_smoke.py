from twig_auth.apikeys.services import issue_api_key


def test_key_calls_the_api_and_revocation_is_instant(client, org, owner):
    key, plaintext = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
    assert client.get("/api/agents", **auth).status_code == 200
    response = client.post("/api/agents", {"name": "x"}, content_type="application/json", **auth)
    assert response.status_code == 403, response.json()
    assert response.json() == {"detail": "This API key needs the 'write' scope for this request.",
                               "code": "insufficient_scope", "required_scope": "write"}
    assert client.delete(f"/api/api-keys/{key.pk}", **auth).status_code == 403
    client.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    assert client.delete(f"/api/api-keys/{key.pk}").status_code == 204
    client.logout()
    response = client.get("/api/agents", **auth)
    assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"
