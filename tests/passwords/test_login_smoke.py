from twig_auth.audit.models import AuditEvent


def test_login_page_signs_in_with_email_and_password(client, make_user):
    make_user("Ann@Example.test")
    response = client.post("/login/", {"email": "ann@example.TEST", "password": "Correct-Horse-9!"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(event="LOGIN_SUCCESS", email="ann@example.test").count() == 1
