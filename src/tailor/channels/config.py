"""Settings of messaging: channels, tracking links and send-time rules (`[channels]` in tailor.toml)."""

from __future__ import annotations

import re

import msgspec


class EmailConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Email over SMTP."""

    host: str = "127.0.0.1"
    """SMTP server (relay or ESP) to hand messages to."""
    port: int = 25
    """Its port (587 for submission with STARTTLS, 465 for TLS from the start)."""
    username: str | None = None
    """SMTP AUTH user, if the server wants one."""
    password: str | None = None
    """SMTP AUTH password."""
    use_tls: bool = False
    """TLS from the first byte (port 465)."""
    start_tls: bool | None = None
    """STARTTLS: true requires it, false never, unset when the server offers it."""
    connections: int = 8
    """SMTP connections kept open and used in parallel."""
    timeout_s: float = 30.0
    """Longest wait for any one server reply."""
    from_address: str = "news@localhost"
    """The From: address."""
    from_name: str = "Tailor"
    """The From: display name."""
    domain: str = "localhost"
    """Right-hand side of Message-IDs."""
    bounce_address: str | None = None
    """Envelope sender: bounces@d becomes bounces+<message id>@d (VERP). Unset: the From address."""
    unsubscribe_mailto: str | None = None
    """Also offer this address as a mailto: unsubscribe in List-Unsubscribe."""
    request_dsn: bool = False
    """Ask for delivery status notifications (RFC 3461) when the server supports DSN."""
    delivered_on_accept: bool = True
    """Count the server's acceptance as delivery (false: wait for a success DSN)."""
    track_opens: bool = True
    """Add the open pixel."""
    track_clicks: bool = True
    """Send links through the click redirect."""
    honeypot_link: bool = True
    """Add an invisible link that only link scanners follow (flags their clicks as machine)."""
    max_attempts: int = 5
    """Attempts before a message is dead."""
    retry_base_s: float = 60.0
    """First retry after about this long; doubling each time, with jitter."""
    retry_max_s: float = 3600.0
    """Longest wait between attempts."""


class SmsConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """SMS through a provider's HTTP API (Twilio's Messages API shape by default)."""

    url: str | None = None
    """The provider's send URL; SMS is off while unset."""
    from_number: str = ""
    """Sender number or id."""
    format: str = "form"
    """"form" or "json" request bodies."""
    username: str | None = None
    """HTTP Basic user (Twilio: the account SID)."""
    password: str | None = None
    """HTTP Basic password (Twilio: the auth token)."""
    bearer_token: str | None = None
    """Or a bearer token."""
    to_field: str = "To"
    """Field of the recipient's number."""
    from_field: str = "From"
    """Field of the sender."""
    body_field: str = "Body"
    """Field of the text."""
    extra_fields: dict[str, str] = msgspec.field(default_factory=dict)
    """Fixed fields added to every request."""
    id_field: str = "sid"
    """Dotted path of the provider's message id in its JSON answer."""
    concurrency: int = 8
    """Requests in parallel."""
    timeout_s: float = 10.0
    """Longest wait for the provider's answer."""
    track_links: bool = True
    """Send links in the text through the click redirect."""
    status_callback_field: str | None = "StatusCallback"
    """Field that carries the URL the provider posts delivery receipts to (unset: none asked for)."""
    status_field: str = "MessageStatus"
    """Field of a delivery receipt that holds the status."""
    delivered_statuses: list[str] = msgspec.field(default_factory=lambda: ["delivered"])
    """Receipt statuses that mean delivered."""
    failed_statuses: list[str] = msgspec.field(default_factory=lambda: ["undelivered", "failed"])
    """Receipt statuses that mean it never arrived."""
    error_field: str = "ErrorCode"
    """Field of a receipt with the provider's error code."""
    max_attempts: int = 5
    """Attempts before a message is dead."""
    retry_base_s: float = 30.0
    """First retry after about this long."""
    retry_max_s: float = 1800.0
    """Longest wait between attempts."""


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Webhooks, signed per Standard Webhooks (the secret is in messaging.secrets.json)."""

    concurrency: int = 16
    """Requests in parallel."""
    timeout_s: float = 10.0
    """Longest wait for an answer."""
    max_attempts: int = 8
    """Attempts before a webhook is dead."""
    retry_base_s: float = 10.0
    """First retry after about this long; doubling, with jitter."""
    retry_max_s: float = 3600.0
    """Longest wait between attempts."""


class RulesConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Send-time rules for marketing messages (transactional ones are exempt)."""

    quiet_hours: bool = True
    """Hold marketing messages during the recipient's night."""
    quiet_start: str = "21:00"
    """Start of quiet hours, local time (HH:MM)."""
    quiet_end: str = "08:00"
    """End of quiet hours, local time (HH:MM)."""
    default_timezone: str = "Europe/London"
    """Time zone of recipients whose own is unknown."""
    frequency_cap: int = 0
    """Most marketing messages per person in the window, across channels; 0 for no cap."""
    frequency_window_hours: float = 24.0
    """The window of the frequency cap."""

    def __post_init__(self) -> None:
        for name in ("quiet_start", "quiet_end"):
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", getattr(self, name)):
                raise ValueError(f"channels.rules.{name} must be HH:MM, got {getattr(self, name)!r}")


class MachineConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """How machine opens and clicks are recognised."""

    proxy_networks: list[str] = msgspec.field(default_factory=lambda: ["17.0.0.0/8"])
    """Networks whose opens are Apple Mail Privacy Protection prefetches (add Apple's egress list)."""
    min_human_seconds: float = 5.0
    """An open or click sooner than this after sending is a machine's."""
    burst_seconds: float = 2.0
    """Several links of one message clicked within this by one client is a scanner."""
    burst_links: int = 3
    """How many links make a burst."""


class ChannelsConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Messaging: the outbox's dispatcher, channels and tracking."""

    enabled: bool = True
    """Run the dispatcher in `tailor serve`."""
    base_url: str = "http://127.0.0.1:8080"
    """Public URL of this server, for tracking links (click, open pixel, unsubscribe)."""
    batch_size: int = 500
    """Messages claimed from the outbox at once."""
    poll_ms: int = 100
    """Longest pause between two looks at the outbox when idle."""
    email: EmailConfig = msgspec.field(default_factory=EmailConfig)
    """Email over SMTP."""
    sms: SmsConfig = msgspec.field(default_factory=SmsConfig)
    """SMS provider."""
    webhook: WebhookConfig = msgspec.field(default_factory=WebhookConfig)
    """Webhooks."""
    rules: RulesConfig = msgspec.field(default_factory=RulesConfig)
    """Quiet hours and frequency caps."""
    machine: MachineConfig = msgspec.field(default_factory=MachineConfig)
    """Machine open and click detection."""
