"""Templates: validation at save time lists every error; rendering is sandboxed and strict."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tailor.channels.exceptions import TemplateError, UnknownTemplateError
from tailor.channels.store import MESSAGING_FILE, connect, create_schema
from tailor.channels.templates import CompiledTemplate, TemplateDefinition, TemplateStore, validate

GOOD = TemplateDefinition(
    name="offer",
    channel="email",
    subject="{{ profile.first_name }}, {{ offer.discount_percent }}% off for you",
    html="<p>Hi {{ profile.first_name }}</p>"
    "{% for p in offer.products %}<a href='{{ p.url }}'>{{ p.name }}</a>{% endfor %}",
    text="Hi {{ profile.first_name }}, use {{ offer.code }}",
)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    c = connect(tmp_path / MESSAGING_FILE)
    create_schema(c)
    return c


def test_a_valid_template_has_no_problems() -> None:
    assert validate(GOOD) == []


def test_every_problem_is_listed_with_part_and_line() -> None:
    bad = TemplateDefinition(
        name="bad",
        channel="email",
        subject="Hello {{ profile.frist_name }}",
        html="<p>\n{% if offer %}\n{{ offer.code }\n{% endif %}",
        text="{{ unknown_thing }} and {{ event.properties.sku }} and {{ profile.traits.tier }}",
    )
    problems = validate(bad)
    text = [str(p) for p in problems]
    assert (
        "subject:1: 'profile.frist_name' is not a declared field (did you mean profile.first_name?)" in text
    )
    assert any(p.part == "html" and p.line == 3 and "syntax error" in p.message for p in problems), text
    assert any(p.part == "text" and "'unknown_thing' is not a declared field" in p.message for p in problems)
    # Wildcards in the schema cover event properties and traits.
    assert not any("event.properties.sku" in t or "profile.traits.tier" in t for t in text)
    assert len(problems) == 3


def test_missing_parts_and_wrong_channel() -> None:
    problems = validate(TemplateDefinition(name="x", channel="email", subject="s", body="sms text"))
    assert {str(p) for p in problems} == {
        "html: is missing",
        "text: is missing",
        "body: a email template has no body part",
    }
    assert [str(p) for p in validate(TemplateDefinition(name="x", channel="fax"))] == [
        "channel: must be one of ['email', 'sms', 'webhook']"
    ]


def test_declared_fields_extend_the_schema() -> None:
    t = TemplateDefinition(name="sms", channel="sms", body="{{ cart.total }} left in your basket")
    assert [p.message for p in validate(t)] == ["'cart.total' is not a declared field"]
    assert (
        validate(TemplateDefinition(name="sms", channel="sms", body=t.body, fields={"cart.total": "number"}))
        == []
    )


def test_render_is_strict_and_escapes_html() -> None:
    compiled = CompiledTemplate(GOOD, 1)
    data = {
        "profile": {"first_name": "<b>Ana</b>"},
        "offer": {
            "discount_percent": 10,
            "code": "HOME10",
            "products": [{"url": "https://x.example/a", "name": "Lamp"}],
        },
    }
    out = compiled.render(data)
    assert out["subject"] == "<b>Ana</b>, 10% off for you"
    assert "<p>Hi &lt;b&gt;Ana&lt;/b&gt;</p>" in out["html"]
    assert out["text"] == "Hi <b>Ana</b>, use HOME10"
    with pytest.raises(TemplateError) as e:
        compiled.render({"profile": {"first_name": "Ana"}, "offer": {"discount_percent": 10, "products": []}})
    assert e.value.problems[0].part == "text"
    assert "'dict object' has no attribute 'code'" in e.value.problems[0].message


def test_sandbox_refuses_python_internals() -> None:
    t = TemplateDefinition(name="evil", channel="sms", body="{{ profile.traits.tier.__class__.__mro__ }}")
    with pytest.raises(TemplateError) as e:
        CompiledTemplate(t, 1).render({"profile": {"traits": {"tier": "gold"}}})
    assert "SecurityError" in str(e.value) or "unsafe" in str(e.value)


def test_webhook_payload_must_render_to_json() -> None:
    t = TemplateDefinition(
        name="hook", channel="webhook", payload='{"id": {{ message_id|tojson }}, "n": {{ event.name }}}'
    )
    with pytest.raises(TemplateError) as e:
        CompiledTemplate(t, 1).render({"message_id": "m1", "event": {"name": "Order Completed"}})
    assert "not JSON" in str(e.value)


def test_store_versions_and_rejects_invalid(conn: sqlite3.Connection) -> None:
    store = TemplateStore()
    assert store.save(conn, GOOD) == 1
    assert store.save(conn, GOOD) == 2
    assert store.get(conn, "offer").version == 2
    assert store.get(conn, "offer", 1).version == 1
    with pytest.raises(TemplateError):
        store.save(conn, TemplateDefinition(name="offer", channel="email", subject="{{", html="x", text="y"))
    assert store.get(conn, "offer").version == 2
    with pytest.raises(UnknownTemplateError):
        store.get(conn, "nope")
    assert TemplateStore.names(conn) == [("offer", 2, "email")]
