"""Real peers of the SSO tests: certificates made with cryptography, IdP metadata written by a real pysaml2
IdP configuration (signing through the xmlsec1 binary), and a real DNS server (Debian's dnsmasq) on loopback."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DNSMASQ = "/usr/sbin/dnsmasq"


def require_binary(name: str, package: str, path: str | None = None) -> str:
    found = path if path and Path(path).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: apt-get install -y {package} (scripts/test installs it).", pytrace=False)
    return found


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    return require_binary("xmlsec1", "xmlsec1")


def make_cert(cn: str, *, not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """Return ``(key_pem, cert_pem)``: a self-signed RSA-2048 certificate, valid a year unless told."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(days=1))
            .not_valid_after(not_after or now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def write_pair(directory: Path, name: str, **kw: Any) -> tuple[str, str]:
    key_pem, cert_pem = make_cert(f"test-{name}", **kw)
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(key_pem)
    cert_file.write_bytes(cert_pem)
    return str(key_file), str(cert_file)


IDP_ENTITY_ID = "https://idp.example.test/idp/metadata"
IDP_SSO_REDIRECT = "https://idp.example.test/idp/sso/redirect"
IDP_SSO_POST = "https://idp.example.test/idp/sso/post"


@pytest.fixture
def idp_metadata(tmp_path: Path, xmlsec1: str) -> Callable[..., str]:
    """Return ``make(**cert_kw) -> xml``: the metadata a real pysaml2 IdP configuration publishes."""
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.metadata import create_metadata_string
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    def make(entity_id: str = IDP_ENTITY_ID, valid_hours: int | None = 24, **cert_kw: Any) -> str:
        key_file, cert_file = write_pair(tmp_path, f"idp{len(list(tmp_path.iterdir()))}", **cert_kw)
        config = IdPConfig()
        config.load({
            "entityid": entity_id, "xmlsec_binary": xmlsec1, "key_file": key_file, "cert_file": cert_file,
            "service": {"idp": {
                "name": "test idp", "signing_algorithm": SIG_RSA_SHA256, "digest_algorithm": DIGEST_SHA256,
                "endpoints": {"single_sign_on_service": [(IDP_SSO_REDIRECT, BINDING_HTTP_REDIRECT),
                                                         (IDP_SSO_POST, BINDING_HTTP_POST)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS], "want_authn_requests_signed": True}},
            **({"valid_for": valid_hours} if valid_hours else {})})  # -> validUntil on the EntityDescriptor
        return create_metadata_string(None, config=config).decode("utf-8")

    return make


SSO_BASE_URL = "https://auth.example.test"


@pytest.fixture
def sp_keys(tmp_path: Path, settings: Any, xmlsec1: str) -> dict[str, str]:
    """Configure the SP key pair and public origin; return the file paths."""
    sp_dir = tmp_path / "sp"
    sp_dir.mkdir()
    key_file, cert_file = write_pair(sp_dir, "sp")
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_BASE_URL": SSO_BASE_URL,
                          "SSO_SP_PRIVATE_KEY_FILE": key_file, "SSO_SP_CERTIFICATE_FILE": cert_file}
    return {"key_file": key_file, "cert_file": cert_file}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


def _answers(port: int) -> bool:
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.nameserver_ports = ["127.0.0.1"], {"127.0.0.1": port}
    resolver.lifetime = 0.3
    try:
        resolver.resolve("ready.twig-probe.test", "A")
    except dns.resolver.NXDOMAIN:
        return True  # authoritative for .test: it is up
    except dns.exception.DNSException:
        return False
    return True


@pytest.fixture
def dns_server(tmp_path: Path, settings: Any) -> Iterator[Callable[..., str]]:
    """Return ``start(txt={name: [values]}, hosts=[names]) -> "127.0.0.1:port"``: a dnsmasq answering for
    ``.test`` on loopback (NXDOMAIN for unknown names there), wired into ``SSO_DNS_NAMESERVERS``."""
    exe = require_binary("dnsmasq", "dnsmasq-base", DNSMASQ)
    started: list[subprocess.Popen[bytes]] = []

    def start(txt: dict[str, list[str]] | None = None, hosts: list[str] | None = None) -> str:
        port = _free_port()
        args = [exe, "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--port={port}",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--conf-file=/dev/null",
                f"--pid-file={tmp_path / f'dnsmasq-{port}.pid'}", f"--log-facility={tmp_path / 'dnsmasq.log'}",
                "--local=/test/"]
        import os

        if os.geteuid() == 0:
            args.append("--user=root")  # otherwise it drops to "nobody" and cannot write its pid file
        for name, values in (txt or {}).items():
            args += [f"--txt-record={name},{value}" for value in values]
        args += [f"--host-record={name},127.0.0.1" for name in hosts or []]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(proc)
        deadline = time.monotonic() + 10
        while not _answers(port):
            if proc.poll() is not None:
                pytest.fail(f"dnsmasq exited ({proc.returncode}): {proc.stderr.read().decode()[:500]}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("dnsmasq did not answer within 10 s", pytrace=False)
        address = f"127.0.0.1:{port}"
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_DNS_NAMESERVERS": [address]}
        return address

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


from tests.sso.connections import make_connection  # noqa: E402, F401  (fixture of the SSO page tests)
