"""A separate process asking for a connection's access token, for the single-flight tests.

Run as ``python -m tests.connectors.refresh_worker`` with ``TWIG_WORKER`` = JSON {"twig_auth": {...},
"org": id, "provider": slug, "subject": id} and the test database in ``SQLITE_PATH`` or ``DATABASE_URL``. It prints
``READY`` once Django is set up, waits for a line on stdin (all workers start together), then prints
``TOKEN <sha256 of the token>`` or ``ERROR <exception class>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twig_project.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    job = json.loads(os.environ["TWIG_WORKER"])
    with override_settings(TWIG_AUTH={**settings.TWIG_AUTH, **job["twig_auth"]}):
        from twig_auth.connectors.tokens import access_token_for
        from twig_auth.orgs.models import Organization

        org = Organization.objects.get(pk=job["org"])
        print("READY", flush=True)
        sys.stdin.readline()
        try:
            token = access_token_for(org=org, provider=job["provider"], subject=job["subject"])
        except Exception as exc:  # noqa: BLE001  (reported to the test)
            print(f"ERROR {type(exc).__name__}", flush=True)
        else:
            print("TOKEN " + hashlib.sha256(token.encode()).hexdigest(), flush=True)


if __name__ == "__main__":
    main()
