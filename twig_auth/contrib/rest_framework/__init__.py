"""DRF integration: the only package of twig_auth that imports rest_framework."""
