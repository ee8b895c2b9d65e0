"""The deterministic answer rules (pure functions)."""

from __future__ import annotations

from twig_project.workspace.answers import answer_chat, answer_question, default_answer, last_user_message

CONFIG = {"faq": {"refund": "R", "Refund Policy": "RP", "hours": "H", "": "empty keyword never matches"},
          "fallback": "F"}


def test_keyword_match_is_case_insensitive():
    assert answer_question("When will my REFUND arrive?", CONFIG, "Bot") == "R"


def test_longest_keyword_wins_whatever_the_dict_order():
    reordered = {"faq": dict(reversed(list(CONFIG["faq"].items())))}
    assert answer_question("your refund policy?", CONFIG, "Bot") == "RP"
    assert answer_question("your refund policy?", reordered, "Bot") == "RP"


def test_equal_length_keywords_are_tried_alphabetically():
    config = {"faq": {"zeta": "Z", "beta": "B"}}
    assert answer_question("beta or zeta", config, "Bot") == "B"


def test_fallback_then_default_sentence():
    assert answer_question("nothing matches", CONFIG, "Bot") == "F"
    assert answer_question("nothing matches", {"faq": {"x": "y"}}, "Bot") == default_answer("Bot")
    assert default_answer("Bot") == "Bot does not have an answer to that question yet."


def test_malformed_config_never_raises():
    for config in (None, [], {"faq": ["refund"]}, {"faq": {"refund": 3}}, {"fallback": 7}, {"faq": {1: "x"}}):
        assert answer_question("refund", config, "Bot") == default_answer("Bot")  # type: ignore[arg-type]


def test_chat_answers_the_last_user_message():
    messages = [{"role": "user", "content": "hours?"}, {"role": "assistant", "content": "H"},
                {"role": "user", "content": "and refunds?"}, {"role": "system", "content": "refund policy"}]
    assert last_user_message(messages) == "and refunds?"
    assert answer_chat(messages, CONFIG, "Bot") == "R"


def test_chat_without_user_message_gets_the_fallback():
    assert last_user_message([{"role": "system", "content": "refund"}]) is None
    assert answer_chat([{"role": "system", "content": "refund"}], CONFIG, "Bot") == "F"
