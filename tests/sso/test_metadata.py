"""IdP metadata: what a real pysaml2 IdP publishes parses; hostile or unusable XML is refused clearly."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from twig_auth.exceptions import InvalidInput
from twig_auth.sso import metadata
from twig_auth.sso.metadata import BINDING_POST, BINDING_REDIRECT, fetch_metadata, parse_idp_metadata

from .conftest import IDP_ENTITY_ID, IDP_SSO_POST, IDP_SSO_REDIRECT, make_cert

NOW = dt.datetime.now(dt.UTC)


def refused(data, match: str, field: str = "idp_metadata_xml") -> str:
    with pytest.raises(InvalidInput) as exc:
        parse_idp_metadata(data)
    assert match in exc.value.detail, exc.value.detail
    assert list(exc.value.errors) == [field]
    return exc.value.detail


def test_pysaml2_idp_metadata_parses(idp_metadata):
    xml = idp_metadata()
    parsed = parse_idp_metadata(xml)
    assert parsed.entity_id == IDP_ENTITY_ID
    assert parsed.sso_urls == {BINDING_REDIRECT: IDP_SSO_REDIRECT, BINDING_POST: IDP_SSO_POST}
    assert parsed.sso_url == IDP_SSO_REDIRECT
    assert len(parsed.certificates) == 1
    cert = parsed.certificates[0]
    assert cert.pem.startswith("-----BEGIN CERTIFICATE-----") and "test-idp" in cert.subject
    assert NOW + dt.timedelta(days=364) < cert.not_after < NOW + dt.timedelta(days=366)
    assert len(cert.fingerprint_sha256) == 95  # 32 bytes as AA:BB:…
    assert parsed.valid_until is not None and parsed.valid_until > NOW
    stored = cert.as_json()
    assert set(stored) == {"pem", "not_after", "fingerprint_sha256"}
    assert dt.datetime.fromisoformat(stored["not_after"]) == cert.not_after


def test_the_fingerprint_is_that_of_the_certificate(idp_metadata):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = parse_idp_metadata(idp_metadata()).certificates[0]
    loaded = x509.load_pem_x509_certificate(cert.pem.encode())
    assert cert.fingerprint_sha256.replace(":", "").lower() == loaded.fingerprint(hashes.SHA256()).hex()


def test_an_expired_signing_certificate_is_reported_with_its_date(idp_metadata):
    expired_on = NOW - dt.timedelta(days=3)
    xml = idp_metadata(not_before=NOW - dt.timedelta(days=400), not_after=expired_on)
    detail = refused(xml, "certificate expired on")
    assert f"{expired_on:%Y-%m-%d}" in detail


def test_expired_metadata_is_refused(idp_metadata):
    xml = idp_metadata(valid_hours=24)
    with pytest.raises(InvalidInput) as exc:
        parse_idp_metadata(xml, now=NOW + dt.timedelta(days=2))
    assert "metadata expired on" in exc.value.detail


def test_garbage_and_non_metadata_are_refused():
    refused("this is not xml", "not XML")
    refused(b"\x00\xff\xfe garbage", "not XML")
    refused("<html><body>Login</body></html>", "not SAML metadata")
    refused('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.test">'
            '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/>'
            "</md:EntityDescriptor>", "no IDPSSODescriptor")


def _without(xml: str, start: str, end: str) -> str:
    i = xml.index(start)
    return xml[:i] + xml[xml.index(end, i) + len(end):]


def test_metadata_without_signing_certificate_or_sso_service(idp_metadata):
    xml = idp_metadata()
    refused(_without(xml, "<ns0:KeyDescriptor", "</ns0:KeyDescriptor>")
            if "<ns0:KeyDescriptor" in xml else _without(xml, "<md:KeyDescriptor", "</md:KeyDescriptor>"),
            "no signing certificate")
    no_sso = xml
    for tag in ("SingleSignOnService",):
        while f":{tag} " in no_sso:
            i = no_sso.index(f":{tag} ")
            start = no_sso.rindex("<", 0, i)
            no_sso = no_sso[:start] + no_sso[no_sso.index("/>", i) + 2:]
    refused(no_sso, "no SingleSignOnService")


def test_oversized_metadata_is_refused_before_parsing():
    refused("<a>" + " " * metadata.MAX_BYTES + "</a>", "larger than 1 MB")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[dict]:
    """A real local HTTP server; ``state["hits"]`` lists the paths requested, ``state["routes"]`` what to answer."""
    state: dict = {"hits": [], "routes": {}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            state["hits"].append(self.path)
            status, headers, body = state["routes"].get(self.path, (404, {}, b"not found"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["base"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def test_xxe_payloads_are_refused_without_reading_files_or_urls(tmp_path, http_server):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    payloads = [
        '<?xml version="1.0"?><!DOCTYPE md [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&xxe;"/>',
        f'<?xml version="1.0"?><!DOCTYPE md [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&xxe;"/>',
        f'<?xml version="1.0"?><!DOCTYPE md [<!ENTITY xxe SYSTEM "{http_server["base"]}/xxe">]>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&xxe;"/>',
        f'<?xml version="1.0"?><!DOCTYPE md SYSTEM "{http_server["base"]}/dtd">'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>',
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol2;"/>',
    ]
    for payload in payloads:
        detail = refused(payload, "refused")
        assert "root:" not in detail and "TOP-SECRET-MARKER" not in detail
    assert http_server["hits"] == []  # no external entity or DTD was fetched


def test_fetch_by_url_from_a_local_server(idp_metadata, http_server):
    xml = idp_metadata().encode()
    http_server["routes"]["/metadata"] = (200, {"Content-Type": "application/samlmetadata+xml"}, xml)
    body = fetch_metadata(http_server["base"] + "/metadata")
    assert body == xml
    assert parse_idp_metadata(body).entity_id == IDP_ENTITY_ID


def test_fetch_follows_a_same_scheme_redirect_but_never_to_file(idp_metadata, http_server):
    xml = idp_metadata().encode()
    http_server["routes"]["/old"] = (302, {"Location": "/metadata"}, b"")
    http_server["routes"]["/metadata"] = (200, {}, xml)
    assert fetch_metadata(http_server["base"] + "/old") == xml
    http_server["routes"]["/evil"] = (302, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(InvalidInput) as exc:
        fetch_metadata(http_server["base"] + "/evil")
    assert "https://" in exc.value.detail and list(exc.value.errors) == ["idp_metadata_url"]


def test_fetch_refuses_plain_http_other_schemes_errors_and_oversize(http_server):
    for url in ("http://idp.example.com/metadata", "file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x",
                "https://", "not a url"):
        with pytest.raises(InvalidInput) as exc:
            fetch_metadata(url)
        assert "https://" in exc.value.detail
    with pytest.raises(InvalidInput) as exc:
        fetch_metadata(http_server["base"] + "/missing")
    assert "HTTP 404" in exc.value.detail
    http_server["routes"]["/huge"] = (200, {}, b"<a>" + b" " * metadata.MAX_BYTES + b"</a>")
    with pytest.raises(InvalidInput) as exc:
        fetch_metadata(http_server["base"] + "/huge")
    assert "larger than 1 MB" in exc.value.detail
    assert http_server["hits"] == ["/missing", "/huge"]


def test_fetch_times_out(tmp_path):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection (kernel backlog) but never answers
    try:
        with pytest.raises(InvalidInput) as exc:
            fetch_metadata(f"http://127.0.0.1:{listener.getsockname()[1]}/metadata", timeout=0.5)
    finally:
        listener.close()
    assert "did not answer within 0.5 seconds" in exc.value.detail


def test_a_certificate_from_make_cert_is_what_the_metadata_carries():
    """Guard for the helper itself: an expired pair really is expired."""
    from cryptography import x509

    _, pem = make_cert("x", not_before=NOW - dt.timedelta(days=10), not_after=NOW - dt.timedelta(days=1))
    assert x509.load_pem_x509_certificate(pem).not_valid_after_utc < NOW
