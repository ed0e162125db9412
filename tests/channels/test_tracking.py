"""Tracking end to end through the app: click, open and unsubscribe links come back as stitched events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from tailor.api import create_app
from tailor.channels.machine import Hit, MachineDetector
from tailor.config import TailorConfig
from tailor.privacy.config import PrivacyConfig
from tailor.runtime import Runtime
from tests.channels.conftest import OFFER, SmtpServer, fast_config, offer_data
from tests.conftest import DataDir

pytestmark = pytest.mark.slow


def make_app(data_dir: DataDir, smtp_server: SmtpServer, requires_grant: bool) -> TestClient:
    privacy = PrivacyConfig(marketing_requires_grant=requires_grant)
    rt = Runtime(data_dir.path, TailorConfig(channels=fast_config(smtp_server), privacy=privacy))
    return TestClient(create_app(rt), base_url="https://t.shop.example")


@pytest.fixture
def app(data_dir: DataDir, smtp_server: SmtpServer) -> Iterator[TestClient]:
    """The whole app; consent is asked at send time, and nobody here has refused marketing."""
    with make_app(data_dir, smtp_server, requires_grant=False) as c:
        c.headers["Authorization"] = data_dir.admin["Authorization"]
        yield c


def runtime(client: TestClient) -> Runtime:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return rt


def settle(client: TestClient) -> None:
    rt = runtime(client)
    assert rt.messaging.dispatcher is not None
    assert rt.messaging.dispatcher.wait_idle(20)
    rt.processor.run_once()


def send_offer(client: TestClient, address: str, **recipient: Any) -> str:
    r = client.post("/api/v1/templates", json=msgspec.to_builtins(OFFER))
    assert r.status_code == 200, r.text
    body = {
        "key": f"campaign:home:{address}",
        "channel": "email",
        "recipient": {"address": address, **recipient},
        "template": "offer",
        "data": offer_data(),
        "campaign_id": "home_2026",
        "journey_id": "j_home",
        "step_id": "email_1",
        "variant_id": "B",
    }
    r = client.post("/api/v1/messages", json=body)
    assert r.status_code == 200, r.text
    mid: str = r.json()["message_id"]
    return mid


def received_links(smtp: SmtpServer) -> tuple[list[str], str, str]:
    msg = smtp.received[-1].message
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    hrefs = re.findall(r'href="(https://t\.shop\.example/t/c/[^"]+)"', html)
    (pixel,) = re.findall(r'src="(https://t\.shop\.example/t/o/[^"]+)"', html)
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    return hrefs, pixel, unsubscribe


def events(client: TestClient, name: str) -> list[dict[str, Any]]:
    rows = runtime(client).db.execute(
        "SELECT e.properties, e.user_id, e.anonymous_id, n.profile_id FROM events e"
        " LEFT JOIN identity_event_hubs h ON h.seq = e.seq LEFT JOIN identity_nodes n ON n.k = h.k"
        " WHERE e.event = ? ORDER BY e.seq",
        [name],
    )
    return [
        {"properties": msgspec.json.decode(p), "user_id": u, "anonymous_id": a, "profile_id": pid}
        for p, u, a, pid in rows
    ]


def test_a_click_redirects_and_becomes_an_event_stitched_to_the_person(
    app: TestClient, smtp_server: SmtpServer, data_dir: DataDir
) -> None:
    # The person is known: they signed up with this email as user u-42.
    identify = {"type": "identify", "userId": "u-42", "traits": {"email": "ana@example.org"}}
    assert (
        app.post("/v1/identify", json=identify, headers={"X-Write-Key": data_dir.creds.write_key}).status_code
        == 200
    )
    mid = send_offer(app, "ana@example.org", user_id="u-42")
    settle(app)
    hrefs, _pixel, _unsubscribe = received_links(smtp_server)
    profile = app.get("/api/v1/profiles", params={"identifier": "user_id:u-42"}).json()["profile_id"]

    browser = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0"}
    runtime(app).messaging.tracker.clock = lambda: 2e10  # well after the send: a person's click
    r = app.get(hrefs[0].removeprefix("https://t.shop.example"), headers=browser, follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://shop.example/offer/home10"
    assert r.headers["cache-control"] == "no-store, private"
    settle(app)
    (click,) = events(app, "Email Link Clicked")
    props = click["properties"]
    assert props["link_url"] == "https://shop.example/offer/home10"
    assert props["link_id"] == "hero"
    assert props["machine"] is False
    assert (props["message_id"], props["campaign_id"], props["journey_id"], props["variant_id"]) == (
        mid, "home_2026", "j_home", "B",
    )  # fmt: skip
    assert click["user_id"] == "u-42"
    assert click["profile_id"] == profile  # stitched to the person
    assert [e["profile_id"] for e in events(app, "Email Delivered")] == [profile]


def test_tampered_or_foreign_tokens_get_a_clear_400_and_never_a_redirect(
    app: TestClient, smtp_server: SmtpServer
) -> None:
    send_offer(app, "ana@example.org")
    settle(app)
    hrefs, pixel, _unsubscribe = received_links(smtp_server)
    path = hrefs[0].removeprefix("https://t.shop.example")
    token = path.rsplit("/", 1)[1]
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for bad in (forged, "/t/c/not-a-token", "/t/c/" + pixel.rsplit("/", 1)[1].removesuffix(".gif")):
        r = app.get(bad, follow_redirects=False)
        assert r.status_code == 400, bad
        assert "location" not in r.headers
        assert "invalid or tampered click link" in r.text
    # A click token is not an unsubscribe token.
    r = app.post(f"/t/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 400
    assert "invalid or tampered unsubscribe link" in r.text


def test_opens_are_recorded_and_machine_opens_flagged(app: TestClient, smtp_server: SmtpServer) -> None:
    send_offer(app, "ana@example.org")
    settle(app)
    _, pixel, _ = received_links(smtp_server)
    path = pixel.removeprefix("https://t.shop.example")
    runtime(app).messaging.tracker.clock = lambda: 2e10
    apple = app.get(path, headers={"User-Agent": "Mozilla/5.0"})
    assert apple.status_code == 200
    assert apple.headers["content-type"] == "image/gif"
    assert apple.content.startswith(b"GIF89a")
    person = app.get(
        path, headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile"}
    )
    assert person.status_code == 200
    settle(app)
    opens = [e["properties"] for e in events(app, "Email Opened")]
    assert [(o["machine"], o.get("machine_reason")) for o in opens] == [
        (True, "apple_mail_privacy_protection"),
        (False, None),
    ]


def test_one_click_unsubscribe_suppresses_later_messages(app: TestClient, smtp_server: SmtpServer) -> None:
    mid = send_offer(app, "ana@example.org")
    settle(app)
    _, _, unsubscribe = received_links(smtp_server)
    path = unsubscribe.removeprefix("https://t.shop.example")
    page = app.get(path)  # what a link scanner or a browser fetches: no change
    assert page.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    settle(app)
    assert events(app, "Unsubscribed") == []
    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click.
    r = app.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert "You are unsubscribed" in r.text
    settle(app)
    (unsub,) = events(app, "Unsubscribed")
    assert unsub["properties"]["message_id"] == mid
    assert unsub["properties"]["list"] == "marketing"
    later_message = {
        "key": "later",
        "channel": "email",
        "recipient": {"address": "ana@example.org"},
        "template": "offer",
        "data": offer_data(),
    }
    again = app.post("/api/v1/messages", json=later_message)
    settle(app)
    later = app.get(f"/api/v1/messages/{again.json()['message_id']}").json()["message"]
    assert later["status"] == "suppressed"
    assert later["reason"] == "suppression list: unsubscribed with the one-click link"
    assert len(smtp_server.received) == 1


DSN = """From: MAILER-DAEMON@mx.example.net
To: bounces+{mid}@shop.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Tue, 1 Dec 2026 10:00:00 +0000

Final-Recipient: rfc822; ana@example.org
Original-Recipient: rfc822; ana@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <ana@example.org>: Recipient address rejected:
 User unknown in virtual mailbox table
--B
Content-Type: text/rfc822-headers

Message-ID: <{mid}@shop.example>
X-Tailor-Message-Id: {mid}
Subject: Ana, 10% off
--B--
"""


def test_an_asynchronous_bounce_marks_the_message_and_suppresses_the_address(
    app: TestClient, smtp_server: SmtpServer
) -> None:
    mid = send_offer(app, "ana@example.org")
    settle(app)
    dsn = DSN.format(mid=mid).replace("\n", "\r\n").encode()
    r = app.post("/api/v1/messages/bounces", content=dsn, headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 200, r.text
    assert r.json()["bounces"] == [
        {
            "message_id": mid,
            "address": "ana@example.org",
            "action": "failed",
            "status": "5.1.1",
            "outcome": "bounced (hard)",
        }
    ]
    settle(app)
    (bounce,) = events(app, "Email Bounced")
    assert bounce["properties"]["bounce_type"] == "hard"
    assert bounce["properties"]["synchronous"] is False
    assert "User unknown in virtual mailbox table" in bounce["properties"]["reason"]
    message = app.get(f"/api/v1/messages/{mid}").json()["message"]
    assert message["status"] == "bounced"
    not_a_bounce = app.post("/api/v1/messages/bounces", content=b"Subject: hello\r\n\r\nhi\r\n")
    assert not_a_bounce.status_code == 422


def test_template_api_lists_every_problem_and_previews(app: TestClient) -> None:
    bad = {
        "name": "x",
        "channel": "email",
        "subject": "{{ profile.frist_name }}",
        "html": "{% if %}",
        "text": "ok",
    }
    r = app.post("/api/v1/templates", json=bad)
    assert r.status_code == 422
    assert [(p["part"], p["line"]) for p in r.json()["problems"]] == [("subject", 1), ("html", 1)]
    assert "did you mean profile.first_name?" in r.json()["problems"][0]["message"]
    preview = app.post(
        "/api/v1/templates/preview", json={"template": msgspec.to_builtins(OFFER), "data": offer_data("Bea")}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["parts"]["subject"] == "Bea, 10% off home accessories"
    missing = app.post("/api/v1/templates/preview", json={"template": msgspec.to_builtins(OFFER), "data": {}})
    assert missing.status_code == 422
    assert {p["part"] for p in missing.json()["problems"]} == {"subject", "html", "text"}
    assert app.post("/api/v1/templates/preview", json={"name": "nope"}).status_code == 404


def test_machine_detection_rules() -> None:
    d = MachineDetector()

    Recent = list[tuple[str, str | None, float, str | None]]

    def verdict(
        kind: str,
        ua: str,
        at: float = 100.0,
        ip: str | None = "81.2.69.160",
        method: str = "GET",
        link: str | None = None,
        recent: Recent | None = None,
    ) -> str | None:
        return d.classify(Hit(kind, "msg_x", at, ip, ua, method, link), 0.0, recent or []).reason

    chrome = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
    assert verdict("open", "Mozilla/5.0") == "apple_mail_privacy_protection"
    assert verdict("open", chrome, ip="17.58.100.1") == "apple_mail_privacy_protection"
    assert verdict("click", "Barracuda Sentinel (EE)") == "scanner_user_agent"
    assert verdict("click", "python-requests/2.32") == "scanner_user_agent"
    assert verdict("click", "") == "no_user_agent"
    assert verdict("click", chrome, method="HEAD") == "head_request"
    assert verdict("click", chrome, at=2.0) == "too_soon_after_send"
    assert verdict("click", chrome, link="_hp") == "honeypot_link"
    from tailor.channels.machine import client_key

    me = client_key("81.2.69.160", chrome)
    burst = [(me, "hero", 99.5, None), (me, "link_2", 99.8, None)]
    assert verdict("click", chrome, link="link_3", recent=burst) == "click_burst"
    assert (
        verdict("click", chrome, link="link_3", recent=[(me, "_hp", 99.9, "honeypot_link")])
        == "honeypot_link"
    )
    assert verdict("click", chrome, link="hero") is None
    assert d.classify(
        Hit("open", "m", 100, None, "Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "GET"), 0
    ).proxy == ("google_image_proxy")


def test_sms_delivery_receipts_over_http(app: TestClient) -> None:
    rt = runtime(app)
    body = {"name": "s", "channel": "sms", "body": "Hi {{ profile.first_name }}"}
    assert app.post("/api/v1/templates", json=body).status_code == 200
    message = {"key": "sms1", "channel": "sms", "recipient": {"address": "+447700900123"}, "template": "s"}
    mid = app.post("/api/v1/messages", json=message).json()["message_id"]
    with rt.messaging.lock:  # no SMS provider is configured here: say it was sent
        rt.messaging.conn.execute("UPDATE outbox SET status = 'sent' WHERE message_id = ?", (mid,))
    path = rt.messaging.links.status_url(mid).removeprefix("https://t.shop.example")
    failed = app.post(path, data={"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert failed.status_code == 200
    assert failed.json() == {"outcome": "failed"}
    detail = app.get(f"/api/v1/messages/{mid}").json()["message"]
    assert (detail["status"], detail["reason"]) == ("failed", "receipt: undelivered (error 30003)")
    assert app.post(path, data={"MessageSid": "SM1"}).status_code == 400
    assert app.post(path[:-4] + "AAAA", data={"MessageStatus": "delivered"}).status_code == 400
    settle(app)
    (event,) = events(app, "SMS Failed")
    assert event["properties"]["error_code"] == "30003"


def test_marketing_waits_for_consent_from_the_privacy_part(
    data_dir: DataDir, smtp_server: SmtpServer
) -> None:
    with make_app(data_dir, smtp_server, requires_grant=True) as c:
        c.headers["Authorization"] = data_dir.admin["Authorization"]
        key = {"X-Write-Key": data_dir.creds.write_key}
        c.post(
            "/v1/identify",
            json={"type": "identify", "userId": "u-1", "traits": {"email": "ana@example.org"}},
            headers=key,
        )
        settle(c)
        profile = c.get("/api/v1/profiles", params={"identifier": "user_id:u-1"}).json()["profile_id"]
        first = send_offer(c, "ana@example.org", profile_id=profile)
        settle(c)
        refused = c.get(f"/api/v1/messages/{first}").json()["message"]
        assert refused["status"] == "suppressed"
        assert (
            refused["reason"] == "consent: no consent recorded for email_marketing on email; it needs a grant"
        )
        grant = {"type": "identify", "userId": "u-1", "traits": {"consent": {"email_marketing": True}}}
        assert c.post("/v1/identify", json=grant, headers=key).status_code == 200
        settle(c)
        body = {"key": "second", "channel": "email", "recipient": {"address": "ana@example.org"},
                "template": "offer", "data": offer_data()}  # fmt: skip
        second = c.post("/api/v1/messages", json=body).json()["message_id"]
        settle(c)
        assert c.get(f"/api/v1/messages/{second}").json()["message"]["status"] == "delivered"
        assert len(smtp_server.received) == 1


def test_erasure_reaches_the_outbox_and_keeps_the_unsubscribe_as_a_hash(
    app: TestClient, smtp_server: SmtpServer, data_dir: DataDir
) -> None:
    rt = runtime(app)
    identify = {"type": "identify", "userId": "u-9", "traits": {"email": "erin@example.org"}}
    app.post("/v1/identify", json=identify, headers={"X-Write-Key": data_dir.creds.write_key})
    settle(app)
    profile = app.get("/api/v1/profiles", params={"identifier": "email:erin@example.org"}).json()[
        "profile_id"
    ]
    send_offer(app, "erin@example.org", profile_id=profile, user_id="u-9")
    settle(app)
    _, _, unsubscribe = received_links(smtp_server)
    app.post(unsubscribe.removeprefix("https://t.shop.example"), content=b"List-Unsubscribe=One-Click")
    settle(app)
    exported = rt.privacy.export("email:erin@example.org")
    assert [m["recipient"]["address"] for m in exported.sections["messages"]] == ["erin@example.org"]
    rt.privacy.erase("email:erin@example.org", actor="test")
    with rt.messaging.lock:
        conn = rt.messaging.conn
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        (address,) = conn.execute("SELECT address FROM suppressions").fetchone()
    assert address.startswith("hmac:")
    blob = b"".join(p.read_bytes() for p in data_dir.path.glob("messaging.sqlite*"))
    assert b"erin@example.org" not in blob
    # The erased person's address is still not mailed.
    again = {"key": "after", "channel": "email", "recipient": {"address": "erin@example.org"},
             "template": "offer", "data": offer_data()}  # fmt: skip
    mid = app.post("/api/v1/messages", json=again).json()["message_id"]
    settle(app)
    message = app.get(f"/api/v1/messages/{mid}").json()["message"]
    assert message["status"] == "suppressed"
    assert message["reason"] == "suppression list: unsubscribed with the one-click link"
