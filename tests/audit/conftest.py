"""Fixtures of the audit tests: the reference API's members, clients and factories (tests/workspace)."""

from tests.workspace.conftest import api_as, make_agent, make_source, members  # noqa: F401  (fixtures)
