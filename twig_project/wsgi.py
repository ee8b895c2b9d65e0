"""WSGI entry point of the reference project."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twig_project.settings")
application = get_wsgi_application()
