"""The demo's local SMTP server: accepts every email the demo's journeys send and keeps it in memory."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class Mail:
    """One email the server accepted."""

    to: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def html(self) -> str:
        """The HTML part (empty when there is none)."""
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""


@dataclass
class _Handler:
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(bytes(envelope.content), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.mails.extend(Mail(to, parsed) for to in envelope.rcpt_tos)
        return "250 2.0.0 Ok: queued"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """An aiosmtpd server on a free local port (the demo's stand-in for an ESP)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.host = "127.0.0.1"
        self.port = _free_port()
        self._handler = _Handler()
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def mails(self) -> list[Mail]:
        """Every email accepted so far, in order."""
        with self._handler.lock:
            return list(self._handler.mails)
