"""SAML login in Chromium against a real third-party IdP: Debian's SimpleSAMLphp under ``php -S``, its own login
page, signed SHA-256 response and assertion, posted back to the Django live server's ACS."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sso.conftest import require_binary, sp_keys, write_pair, xmlsec1  # noqa: F401  (fixtures)
from twig_auth.core import clock
from twig_auth.orgs.models import Membership
from twig_auth.sso import metadata
from twig_auth.sso.models import SsoConnection, SsoDomain

SSP_WWW = Path("/usr/share/simplesamlphp/www")
USER, PASSWORD, EMAIL = "alice", "alicepass", "alice@acme.test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, port: int, sp_entity_id: str, acs_url: str, sp_cert: str) -> None:
    for name in ("config", "cert", "metadata", "tmp", "log"):
        (root / name).mkdir(parents=True, exist_ok=True)
    key_file, cert_file = write_pair(root / "cert", "idp")
    os.chmod(key_file, 0o644)
    (root / "cert" / "sp.crt").write_text(Path(sp_cert).read_text())
    (root / "config" / "config.php").write_text(f"""<?php
require '/etc/simplesamlphp/config.php';
$config['baseurlpath'] = 'http://localhost:{port}/';
$config['certdir'] = '{root}/cert/';
$config['metadatadir'] = '{root}/metadata/';
$config['tempdir'] = '{root}/tmp';
$config['loggingdir'] = '{root}/log/';
$config['logging.handler'] = 'errorlog';
$config['logging.level'] = SimpleSAML\\Logger::NOTICE;
$config['secretsalt'] = 'test-only-salt';
$config['auth.adminpassword'] = 'test-admin';
$config['enable.saml20-idp'] = true;
$config['module.enable'] = ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true];
$config['timezone'] = 'UTC';
$config['technicalcontact_email'] = 'test@example.org';
$config['session.cookie.secure'] = false;
$config['session.cookie.samesite'] = null;
""")
    (root / "config" / "authsources.php").write_text(f"""<?php
$config = [
  'admin' => ['core:AdminPassword'],
  'example-userpass' => ['exampleauth:UserPass',
     '{USER}:{PASSWORD}' => ['mail' => ['{EMAIL}'], 'givenName' => ['Alice'], 'sn' => ['Liddell'],
                             'groups' => ['Engineering']]],
];
""")
    (root / "metadata" / "saml20-idp-hosted.php").write_text("""<?php
$metadata['__DYNAMIC:1__'] = [
  'host' => '__DEFAULT__', 'privatekey' => 'idp.key', 'certificate' => 'idp.crt', 'auth' => 'example-userpass',
  'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'saml20.sign.response' => true, 'saml20.sign.assertion' => true,
  'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  'authproc' => [10 => ['class' => 'saml:AttributeNameID', 'attribute' => 'mail',
                        'Format' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress']],
];
""")
    (root / "metadata" / "saml20-sp-remote.php").write_text(f"""<?php
$metadata['{sp_entity_id}'] = [
  'AssertionConsumerService' => '{acs_url}',
  'certificate' => 'sp.crt', 'validate.authnrequest' => true,
  'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
];
""")


@pytest.fixture
def simplesamlphp(tmp_path: Path, live_server: Any, settings: Any,
                  sp_keys: dict[str, str]) -> Iterator[str]:  # noqa: F811  (the fixture imported above)
    """Start SimpleSAMLphp for the org ``acme`` SP of the live server; yield its base URL."""
    php = require_binary("php", "php-cli")
    if not SSP_WWW.exists():
        pytest.fail("SimpleSAMLphp is missing: apt-get install -y simplesamlphp php-xml (scripts/test installs it).",
                    pytrace=False)
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_BASE_URL": live_server.url}
    # Plain http on loopback: a SameSite=None cookie must be Secure, which http cannot set; IdP and SP are the
    # same site here (both "localhost", the live server's host), so Lax reaches the ACS. Production (https)
    # keeps djangosaml2's None + Secure.
    settings.SAML_SESSION_COOKIE_SAMESITE = "Lax"
    port = _free_port()
    root = tmp_path / "ssp"
    _config(root, port, f"{live_server.url}/sso/saml/acme/metadata/", f"{live_server.url}/sso/saml/acme/acs/",
            sp_keys["cert_file"])
    log = (tmp_path / "php.log").open("wb")
    env = {**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(root / "config")}
    proc = subprocess.Popen([php, "-S", f"127.0.0.1:{port}", "-t", str(SSP_WWW)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"{base}/saml2/idp/metadata.php", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"SimpleSAMLphp did not start: {(tmp_path / 'php.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_chromium_signs_in_through_simplesamlphp(simplesamlphp: str, new_page: Any,
                                                 make_org: Any, live_server: Any) -> None:
    org = make_org("acme", plan="enterprise")
    SsoDomain.objects.create(org=org, domain="acme.test", verified_at=clock.now())
    xml = urllib.request.urlopen(f"{simplesamlphp}/saml2/idp/metadata.php", timeout=5).read().decode()
    connection = SsoConnection(org=org, name="SimpleSAMLphp", protocol="saml", group_attribute="groups",
                               group_role_mapping={"Engineering": "manager"})
    metadata.apply_to_connection(connection, metadata.parse_idp_metadata(xml), xml)
    connection.enabled = True
    connection.save()

    page = new_page()
    page.goto("/sso/saml/acme/login/?next=/account/")
    page.wait_for_url(f"{simplesamlphp}/**")
    page.locator("input[name=username]").fill(USER)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit], input[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/account/**", timeout=15_000)

    membership = Membership.objects.select_related("user").get(org=org, user__email=EMAIL)
    assert membership.role == "manager"
    assert membership.user.name == "Alice Liddell"
    from twig_auth.audit.models import AuditEvent

    event = AuditEvent.objects.get(event="LOGIN_SUCCESS", user=membership.user)
    assert event.details["method"] == "sso" and event.details["connection"] == connection.pk
