"""B-VAULT: sealing and opening one stored secret, ours (AES-256-GCM bound to its row and org) vs
django-fernet-encrypted-fields (Fernet: AES-128-CBC + HMAC-SHA256, keys derived from SECRET_KEY).

Rows:

* open a stored value (what reading ``obj.secret`` costs once per instance): ours ``field.open`` vs the peer's
  ``from_db_value``; target: no slower than the peer;
* seal a value (what ``save()`` costs for a new secret): ours ``field.seal`` vs the peer's ``get_prep_value``;
  target: no slower than the peer;
* stored size of a 51-character provider key (reported);
* properties the peer lacks, checked here on both: a value copied to another row, and a tampered value.
"""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from bench.harness import Row, alternate, fmt_time, per_call, samples_note
from twig_auth.exceptions import DecryptionFailed
from twig_auth.sso.models import SsoConnection

SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2 + "xyz"  # 51 characters, shaped like a provider key


def _peer_field() -> Any:
    from encrypted_fields.fields import EncryptedTextField as PeerField

    field = PeerField()
    field.set_attributes_from_name("secret")
    return field


def _time_row(name: str, ours: Any, peer: Any, calls: int) -> Row:
    pair = alternate(lambda: per_call(ours, calls), lambda: per_call(peer, calls))
    ratio = pair.ours / pair.peer
    return Row(name, fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:.2f}× its cost", "≤ 1.0× its cost",
               ratio <= 1.0, samples_note(pair, fmt_time))


def run(*, quick: bool) -> list[Row]:
    calls = 2_000 if quick else 20_000
    with override_settings(SALT_KEY="bench-salt"):
        peer = _peer_field()
        field = SsoConnection._meta.get_field("oidc_client_secret")
        row = SsoConnection(id="sso_bench000000001", org_id=1)
        token = field.seal(row, SECRET)
        peer_token = peer.get_prep_value(SECRET)
        assert field.decode(field.open(row, token)) == SECRET and peer.from_db_value(peer_token, None, None) == SECRET
        rows = [
            _time_row("vault: open one stored secret", lambda: field.open(row, token),
                      lambda: peer.from_db_value(peer_token, None, None), calls),
            _time_row("vault: seal one secret", lambda: field.seal(row, SECRET), lambda: peer.get_prep_value(SECRET),
                      calls),
            Row("vault: stored size of a 51-char key", f"{len(token)} B", f"{len(peer_token)} B",
                f"{len(token) / len(peer_token):.2f}×", "reported", None),
        ]
        other = SsoConnection(id="sso_bench000000002", org_id=1)
        try:
            field.open(other, token)
            ours_copy = "accepted"
        except DecryptionFailed:
            ours_copy = "refused"
        peer_copy = "accepted" if peer.from_db_value(peer_token, None, None) == SECRET else "refused"
        rows.append(Row("vault: value copied to another row", ours_copy, peer_copy + " (no associated data)", "—",
                        "refused", ours_copy == "refused"))
        tampered, peer_tampered = token[:-2] + "AA", peer_token[:-6] + "AAAAAA"
        try:
            field.open(row, tampered)
            ours_tamper = "accepted"
        except DecryptionFailed:
            ours_tamper = "raises DecryptionFailed"
        peer_result = peer.from_db_value(peer_tampered, None, None)
        peer_tamper = "returns the ciphertext as the value" if peer_result == peer_tampered else "refused"
        rows.append(Row("vault: tampered value", ours_tamper, peer_tamper, "—", "refused",
                        ours_tamper.startswith("raises")))
    return rows
