"""Authorization. This package's pure core (no ORM, no HTTP) is:

- :mod:`~twig_auth.authz.policy_language`: validate and compile ABAC policy documents;
- :mod:`~twig_auth.authz.attributes`: the attributes a decision reads (user, resource, request, time);
- :mod:`~twig_auth.authz.engine`: :class:`PolicySet` (indexed, compiled once) and its :class:`Decision`;
- :mod:`~twig_auth.authz.timewindow`: ``accessControl`` time windows.

Import the names from the modules; this package stays import-light so that models can load it early.
"""
