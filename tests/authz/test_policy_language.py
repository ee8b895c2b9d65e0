"""The policy language: valid documents normalize, every problem is named by its field path, compile shape."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twig_auth.authz.policy_language import MAX_CONDITIONS, compile_policy, validate_policy
from twig_auth.exceptions import InvalidInput

CONTRACT = {"policy": {"resource": "agent:agent-123", "action": "use", "effect": "allow",
                       "conditions": [{"user.role": "manager"}, {"user.department": "support"},
                                      {"time.hour": {">=": 9, "<=": 17}}]}}


def policy(*conditions, **fields):
    body = {"resource": "agent:*", "action": "use", "effect": "allow", "conditions": list(conditions)}
    body.update(fields)
    return {"policy": body}


def errors_of(document, **kwargs):
    with pytest.raises(InvalidInput) as exc:
        validate_policy(document, **kwargs)
    return exc.value.errors


# --- valid documents ------------------------------------------------------------------------------------


def test_contract_example_is_valid_and_returned_unchanged():
    assert validate_policy(copy.deepcopy(CONTRACT)) == CONTRACT


def test_missing_conditions_normalize_to_an_empty_list():
    assert validate_policy({"policy": {"resource": "*", "action": "*", "effect": "deny"}}) == {
        "policy": {"resource": "*", "action": "*", "effect": "deny", "conditions": []}}


def test_timezone_and_description_are_kept():
    doc = policy(timezone="Asia/Kolkata", description="Support hours in India")
    out = validate_policy(doc)["policy"]
    assert out["timezone"] == "Asia/Kolkata" and out["description"] == "Support hours in India"


@pytest.mark.parametrize(("written", "normalized"), [
    ({"user.role": {"==": "admin"}}, {"user.role": "admin"}),
    ({"user.email": " Ann@ACME.test"}, {"user.email": "ann@acme.test"}),
    ({"user.email_domain": {"in": ["ACME.test", "acme.test", "b.test"]}},
     {"user.email_domain": {"in": ["acme.test", "b.test"]}}),
    ({"request.ip": {"cidr": "10.1.2.3/8"}}, {"request.ip": {"cidr": "10.0.0.0/8"}}),
    ({"request.ip": {"cidr": ["2001:DB8::/32", "192.168.1.7"]}},
     {"request.ip": {"cidr": ["2001:db8::/32", "192.168.1.7/32"]}}),
    ({"request.ip": "::ffff:10.0.0.5"}, {"request.ip": "10.0.0.5"}),
    ({"user.level": {"in": [1, True, 1.0, "1"]}}, {"user.level": {"in": [1, True, "1"]}}),
    ({"time.date": {">=": "2026-03-08", "<": "2026-04-01"}}, {"time.date": {">=": "2026-03-08", "<": "2026-04-01"}}),
    ({"request.mfa": True}, {"request.mfa": True}),
])
def test_conditions_are_normalized(written, normalized):
    assert validate_policy(policy(written))["policy"]["conditions"] == [normalized]


def test_normalized_documents_validate_to_themselves():
    doc = policy({"user.groups": {"contains": "support"}}, {"resource.tags": {"not_in": ["secret"]}},
                 {"time.weekday": {"in": [1, 2, 3, 4, 5]}}, {"request.ip": {"cidr": ["10.0.0.0/8"]}},
                 {"user.department": {"!=": "sales", "contains": "sup"}}, timezone="Europe/Berlin")
    once = validate_policy(doc)
    assert validate_policy(once) == once


def test_validation_does_not_modify_its_input():
    doc = policy({"user.email": "A@B.TEST"}, {"user.role": {"in": ["user", "user"]}})
    before = copy.deepcopy(doc)
    validate_policy(doc)
    assert doc == before


# --- field-level errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("document", "path", "fragment"), [
    ([], "non_field_errors", "JSON object"),
    ({}, "policy", "required"),
    ({"policy": "allow"}, "policy", "object"),
    ({"policy": {"resource": "*", "action": "*", "effect": "allow"}, "version": 2}, "version", "Unknown field"),
    ({"policy": {"action": "*", "effect": "allow"}}, "policy.resource", "required"),
    ({"policy": {"resource": "*", "effect": "allow"}}, "policy.action", "required"),
    ({"policy": {"resource": "*", "action": "*"}}, "policy.effect", "required"),
    (policy(priority=1), "policy.priority", "Unknown field"),
    (policy(resource="agent"), "policy.resource", '"<type>:<id>"'),
    (policy(resource="agent:"), "policy.resource", '"<type>:<id>"'),
    (policy(resource="Agent:a1"), "policy.resource", '"<type>:<id>"'),
    (policy(resource="agent:a b"), "policy.resource", '"<type>:<id>"'),
    (policy(resource="agent:ag*"), "policy.resource", 'use "agent:*"'),
    (policy(resource="*:*"), "policy.resource", '"<type>:<id>"'),
    (policy(resource=7), "policy.resource", '"<type>:<id>"'),
    (policy(resource="agent:" + "x" * 129), "policy.resource", '"<type>:<id>"'),
    (policy(action="Use"), "policy.action", "action name"),
    (policy(action=""), "policy.action", "action name"),
    (policy(action=["use"]), "policy.action", "action name"),
    (policy(effect="permit"), "policy.effect", '"allow" or "deny"'),
    (policy(effect=True), "policy.effect", '"allow" or "deny"'),
    (policy(timezone="Mars/Olympus"), "policy.timezone", '"Mars/Olympus" is not a known time zone'),
    (policy(timezone=3), "policy.timezone", "time zone name"),
    (policy(timezone="../../etc/passwd"), "policy.timezone", "not a known time zone"),
    (policy(description="x" * 501), "policy.description", "at most 500"),
    (policy(description=5), "policy.description", "at most 500"),
    ({"policy": {"resource": "*", "action": "*", "effect": "allow", "conditions": {"user.role": "admin"}}},
     "policy.conditions", "list of conditions"),
    (policy(*([{"user.role": "admin"}] * (MAX_CONDITIONS + 1))), "policy.conditions", f"At most {MAX_CONDITIONS}"),
    (policy("user.role"), "policy.conditions.0", "naming one attribute"),
    (policy({}), "policy.conditions.0", "naming one attribute"),
    (policy({"user.role": "admin", "user.department": "it"}), "policy.conditions.0", "a condition of its own"),
    (policy({"foo.bar": 1}), "policy.conditions.0.foo.bar", "attributes start with user., resource., time."),
    (policy({"role": "admin"}), "policy.conditions.0.role", "attributes start with user."),
    (policy({"time.second": 5}), "policy.conditions.0.time.second", "time attributes are date, hour, minute, "
                                                                     "weekday"),
    (policy({"resource.color": "red"}), "policy.conditions.0.resource.color", "resource attributes are id, owner"),
    (policy({"request.path": "/x"}), "policy.conditions.0.request.path", "request attributes are ip, mfa"),
    (policy({"user.address.city": "x"}), "policy.conditions.0.user.address.city", "Member attribute names"),
    (policy({"user.": "x"}), "policy.conditions.0.user.", "Member attribute names"),
    (policy({"user.role": {"=>": "admin"}}), "policy.conditions.0.user.role", 'Unknown operator "=>"'),
    (policy({"user.role": {}}), "policy.conditions.0.user.role", "at least one operator"),
    (policy({"user.role": "boss"}), "policy.conditions.0.user.role", 'Unknown role "boss"'),
    (policy({"user.role": {"in": ["admin", "boss"]}}), "policy.conditions.0.user.role", 'unknown role "boss"'),
    (policy({"user.role": {">": "admin"}}), "policy.conditions.0.user.role", 'does not take ">"'),
    (policy({"user.role": {"cidr": "10.0.0.0/8"}}), "policy.conditions.0.user.role", 'does not take "cidr"'),
    (policy({"user.role": 3}), "policy.conditions.0.user.role", "non-empty string"),
    (policy({"user.id": ""}), "policy.conditions.0.user.id", "non-empty string"),
    (policy({"resource.owner": "x" * 257}), "policy.conditions.0.resource.owner", "at most 256"),
    (policy({"user.groups": "support"}), "policy.conditions.0.user.groups", '{"contains": "<name>"}'),
    (policy({"resource.tags": {"contains": 5}}), "policy.conditions.0.resource.tags", "non-empty string"),
    (policy({"user.role": {"in": []}}), "policy.conditions.0.user.role", '"in" must be a non-empty list'),
    (policy({"user.role": {"not_in": "admin"}}), "policy.conditions.0.user.role", "non-empty list"),
    (policy({"user.department": {"in": [str(i) for i in range(101)]}}), "policy.conditions.0.user.department",
     "at most 100 values"),
    (policy({"time.hour": 24}), "policy.conditions.0.time.hour", "between 0 and 23"),
    (policy({"time.hour": {">=": -1}}), "policy.conditions.0.time.hour", '">=" must be between 0 and 23'),
    (policy({"time.hour": "9"}), "policy.conditions.0.time.hour", "whole number"),
    (policy({"time.hour": 9.5}), "policy.conditions.0.time.hour", "whole number"),
    (policy({"time.hour": True}), "policy.conditions.0.time.hour", "whole number"),
    (policy({"time.hour": {"contains": 9}}), "policy.conditions.0.time.hour", 'does not take "contains"'),
    (policy({"time.minute": 60}), "policy.conditions.0.time.minute", "between 0 and 59"),
    (policy({"time.weekday": 0}), "policy.conditions.0.time.weekday", "between 1 and 7"),
    (policy({"time.weekday": {"in": [1, 8]}}), "policy.conditions.0.time.weekday", "between 1 and 7"),
    (policy({"time.date": "2026-13-01"}), "policy.conditions.0.time.date", "YYYY-MM-DD"),
    (policy({"time.date": "2026-3-8"}), "policy.conditions.0.time.date", "YYYY-MM-DD"),
    (policy({"time.date": "20260308"}), "policy.conditions.0.time.date", "YYYY-MM-DD"),
    (policy({"time.date": 20260308}), "policy.conditions.0.time.date", "YYYY-MM-DD"),
    (policy({"request.ip": "10.0.0.300"}), "policy.conditions.0.request.ip", "IPv4 or IPv6 address"),
    (policy({"request.ip": {"cidr": "10.0.0.0/33"}}), "policy.conditions.0.request.ip", "CIDR range"),
    (policy({"request.ip": {"cidr": ["10.0.0.0/8", "nope"]}}), "policy.conditions.0.request.ip", '"nope"'),
    (policy({"request.ip": {"cidr": []}}), "policy.conditions.0.request.ip", "non-empty list"),
    (policy({"request.ip": {"cidr": 10}}), "policy.conditions.0.request.ip", "CIDR range"),
    (policy({"request.ip": {">": "10.0.0.1"}}), "policy.conditions.0.request.ip", 'does not take ">"'),
    (policy({"request.mfa": "yes"}), "policy.conditions.0.request.mfa", "true or false"),
    (policy({"request.mfa": {"in": [True]}}), "policy.conditions.0.request.mfa", 'does not take "in"'),
    (policy({"user.level": {">": [1]}}), "policy.conditions.0.user.level", "number or a string"),
    (policy({"user.level": {">": True}}), "policy.conditions.0.user.level", "number or a string"),
    (policy({"user.level": {"a": 1}}), "policy.conditions.0.user.level", 'Unknown operator "a"'),
    (policy({"user.level": None}), "policy.conditions.0.user.level", "a string, a number, or true or false"),
    (policy({"user.level": [1, 2]}), "policy.conditions.0.user.level", "a string, a number, or true or false"),
    (policy({"user.level": float("nan")}), "policy.conditions.0.user.level", "a string, a number"),
    (policy({"user.level": {"in": [1, {"a": 1}]}}), "policy.conditions.0.user.level", "a string, a number"),
])
def test_each_problem_is_named_by_its_field_path(document, path, fragment):
    errors = errors_of(document)
    assert path in errors, errors
    assert any(fragment in message for message in errors[path]), errors[path]


def test_every_problem_is_reported_at_once():
    doc = policy({"user.role": "admin"}, {"time.hour": {">=": 25, "=>": 3}}, {"x.y": 1},
                 resource="agent:a*", action="Fly", effect="maybe", timezone="Nowhere/City")
    errors = errors_of(doc)
    assert set(errors) == {"policy.resource", "policy.action", "policy.effect", "policy.timezone",
                           "policy.conditions.1.time.hour", "policy.conditions.2.x.y"}
    assert errors["policy.conditions.1.time.hour"] == [
        '">=" must be between 0 and 23.',
        'Unknown operator "=>"; use one of ==, !=, in, not_in, >=, <=, >, <, contains, cidr, not_cidr.']


def test_messages_are_plain_sentences_with_json_quotes():
    errors = errors_of(policy({"time.second": 1}))
    assert errors == {"policy.conditions.0.time.second": [
        'Unknown attribute "time.second"; time attributes are date, hour, minute, weekday.']}


def test_hostile_names_are_cut_in_paths_and_messages():
    long_name = "user." + "a" * 500
    errors = errors_of(policy({long_name: 1}))
    (path,) = errors
    assert len(path) < 120 and all(len(m) < 200 for m in errors[path])


# --- registry of resource types and actions -------------------------------------------------------------

REGISTRY = {"agent": ["view", "use", "edit", "manage"], "data_source": ["view", "connect", "edit", "process"]}


def test_registry_refuses_unknown_types_and_actions():
    errors = errors_of(policy(resource="dataset:d1", action="use"), resource_types=REGISTRY)
    assert errors == {"policy.resource": ['Unknown resource type "dataset"; known types: agent, data_source.']}
    errors = errors_of(policy(resource="agent:a1", action="process"), resource_types=REGISTRY)
    assert errors == {"policy.action": ['"process" is not an action of agent; the actions are: edit, manage, use, '
                                        "view."]}
    errors = errors_of(policy(resource="*", action="fly"), resource_types=REGISTRY)
    assert "of any resource type" in errors["policy.action"][0]


def test_registry_accepts_known_pairs_and_wildcards():
    for resource, action in [("agent:a1", "use"), ("agent:*", "*"), ("*", "process"), ("data_source:d", "connect")]:
        validate_policy(policy(resource=resource, action=action), resource_types=REGISTRY)


# --- compile --------------------------------------------------------------------------------------------


def test_compiled_policy_exposes_its_patterns_and_normalized_document():
    compiled = compile_policy(42, CONTRACT)
    assert (compiled.id, compiled.effect, compiled.resource_type, compiled.resource_id, compiled.action) == (
        "42", "allow", "agent", "agent-123", "use")
    assert compiled.resource == "agent:agent-123" and compiled.timezone is None
    assert [c.attribute for c in compiled.conditions] == ["user.role", "user.department", "time.hour"]
    assert compiled.document == CONTRACT
    wildcard = compile_policy("w", {"policy": {"resource": "*", "action": "*", "effect": "deny"}})
    assert (wildcard.resource_type, wildcard.resource_id, wildcard.resource) == ("*", "*", "*")


@pytest.mark.parametrize(("resource", "action", "request_", "expected"), [
    ("agent:a1", "use", ("agent", "a1", "use"), True),
    ("agent:a1", "use", ("agent", "a2", "use"), False),
    ("agent:a1", "use", ("agent", "a1", "edit"), False),
    ("agent:*", "use", ("agent", "anything", "use"), True),
    ("agent:*", "use", ("data_source", "anything", "use"), False),
    ("*", "use", ("data_source", "d1", "use"), True),
    ("agent:a1", "*", ("agent", "a1", "manage"), True),
    ("*", "*", ("group", "g", "member"), True),
])
def test_matches_follows_the_resource_and_action_patterns(resource, action, request_, expected):
    assert compile_policy("p", policy(resource=resource, action=action)).matches(*request_) is expected


def test_compile_refuses_what_validation_refuses():
    with pytest.raises(InvalidInput) as exc:
        compile_policy("p", policy({"time.hour": 99}))
    assert list(exc.value.errors) == ["policy.conditions.0.time.hour"]


def test_shared_cache_compiles_identical_conditions_once():
    cache: dict = {}
    a = compile_policy("a", policy({"user.role": {"in": ["admin", "manager"]}}), cache=cache)
    b = compile_policy("b", policy({"user.role": {"in": ["admin", "manager"]}}, resource="agent:x"), cache=cache)
    c = compile_policy("c", policy({"user.role": {"in": ["admin", "manager"]}}, timezone="UTC"), cache=cache)
    assert a.conditions[0] is b.conditions[0]
    assert c.conditions[0] is not a.conditions[0]  # another time zone, another key
    # true and 1 are different operands even though they hash alike
    d = compile_policy("d", policy({"user.flag": True}), cache=cache)
    e = compile_policy("e", policy({"user.flag": 1}), cache=cache)
    assert d.conditions[0] is not e.conditions[0]
    assert d.document["policy"]["conditions"] == [{"user.flag": True}]
    assert e.document["policy"]["conditions"] == [{"user.flag": 1}]


# --- property: nothing but InvalidInput ever escapes ----------------------------------------------------

json_values = st.recursive(st.none() | st.booleans() | st.integers(-30, 30) | st.floats(allow_nan=True)
                           | st.text(max_size=12), lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
attribute_names = st.sampled_from(["user.role", "user.groups", "time.hour", "time.date", "request.ip",
                                   "request.mfa", "resource.tags", "user.department", "x.y", "user.a b"])
operators = st.sampled_from(["==", "!=", "in", "not_in", ">=", "<=", ">", "<", "contains", "cidr", "~"])
conditions = st.one_of(
    st.dictionaries(attribute_names, json_values, min_size=1, max_size=1),
    st.dictionaries(attribute_names, st.dictionaries(operators, json_values, max_size=3), min_size=1, max_size=1),
    json_values)


SHARED_CACHE: dict = {}  # lives across examples: a cached condition must never stand in for a different one


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["resource", "action", "effect", "conditions", "timezone", "x"]),
                       json_values, max_size=6), st.lists(conditions, max_size=4))
def test_arbitrary_documents_either_validate_or_raise_invalid_input(body, conds):
    body = {"resource": "*", "action": "*", "effect": "allow", **body, "conditions": conds}
    document = {"policy": body}
    try:
        out = validate_policy(document)
    except InvalidInput as exc:
        assert exc.errors and all(isinstance(m, str) for ms in exc.errors.values() for m in ms)
        json.dumps(exc.errors)
        with pytest.raises(InvalidInput) as compiled_exc:
            compile_policy("p", document, cache=SHARED_CACHE)
        assert compiled_exc.value.errors == exc.errors
    else:
        assert validate_policy(out) == out
        json.dumps(out)
        assert compile_policy("p", document, cache=SHARED_CACHE).document == out
        assert compile_policy("p", out).document == out


@pytest.mark.parametrize("body", [{"timezone": ["UTC"]}, {"timezone": {"a": 1}}, {"action": ["use"]},
                                  {"effect": {"x": 1}}, {"resource": ["agent:*"]}])
def test_unhashable_values_are_refused_when_compiling_with_a_cache(body):
    document = {"policy": {"resource": "*", "action": "*", "effect": "allow", "conditions": [{"user.role": "user"}],
                           **body}}
    with pytest.raises(InvalidInput):
        compile_policy("p", document, cache={})
