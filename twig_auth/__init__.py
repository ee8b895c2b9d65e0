"""twig_auth: authentication and authorization for Django."""

__version__ = "0.1.0"
