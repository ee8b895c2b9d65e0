import datetime as dt

import pytest

from twig_auth.authz.attributes import Attributes
from twig_auth.authz.engine import PolicySet
from twig_auth.exceptions import InvalidInput

NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
DOC = {"policy": {"resource": "agent:*", "action": "use", "effect": "deny",
                  "conditions": [{"request.ip": {"not_cidr": ["10.0.0.0/8", "2001:db8::/32"]}}]}}


@pytest.mark.parametrize(("ip", "denied"), [("10.1.2.3", False), ("2001:db8::5", False), ("192.0.2.7", True),
                                            (None, False)])
def test_not_cidr_denies_requests_from_outside_the_ranges(ip, denied):
    decision = PolicySet.compile([("outside-office", DOC)]).decide(
        Attributes(resource_type="agent", resource_id="a1", ip=ip, now=NOW), "use")
    assert decision.denied is denied
    if denied:
        assert 'request.ip "192.0.2.7" is outside' in decision.reason


def test_not_cidr_needs_valid_ranges():
    bad = {"policy": {**DOC["policy"], "conditions": [{"request.ip": {"not_cidr": ["10.0.0.0/33"]}}]}}
    with pytest.raises(InvalidInput) as caught:
        PolicySet.compile([("p", bad)])
    assert list(caught.value.errors) == ["policies.p.policy.conditions.0.request.ip"]
    assert "not_cidr" in caught.value.errors["policies.p.policy.conditions.0.request.ip"][0]
