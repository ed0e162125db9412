"""Email over SMTP with aiosmtplib: a pool of kept-open connections, and the hand-over before the final dot.

Each connection carries one message at a time and stays open for the next (no reconnect, no
RSET after a successful transaction). The DATA phase is driven here rather than by
aiosmtplib's `data()` so that the message is marked handed over right before the bytes that make
the server act on it leave: a server acts on a message only once it reads the end-of-data line
(RFC 5321 4.1.1.4) and discards it when the connection drops earlier. A message that fits the
socket's empty send buffer goes out with its dot in one write after the mark; a larger one is
written first, and the mark comes between its last byte reaching the kernel and the dot.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import aiosmtplib

from tailor.channels.base import Delivery, HandOver
from tailor.channels.config import EmailConfig
from tailor.channels.exceptions import PermanentDeliveryError, TransientDeliveryError
from tailor.channels.mail import PreparedEmail, build_email
from tailor.channels.outbox import StoredMessage
from tailor.channels.templates import Rendered
from tailor.channels.tracking import TrackingLinks

_DOT = re.compile(rb"(?m)^\.")
ONE_WRITE_BYTES = 16 * 1024
"""Messages up to this size (Linux's smallest TCP send buffer) are written with their dot at once."""
# Enhanced status codes that name the recipient (RFC 3463: X.1.x addressing, X.2.x mailbox).
_RECIPIENT_STATUS = re.compile(r"\b5\.[12]\.\d{1,3}\b")


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def _refusal(code: int, message: str, stage: str, recipient_stage: bool) -> Exception:
    text = f"{stage}: {_reply(code, message)}"
    if 400 <= code < 500:
        return TransientDeliveryError(text, code)
    bounce = recipient_stage or bool(_RECIPIENT_STATUS.search(message))
    return PermanentDeliveryError(text, code, bounce=bounce)


class SmtpChannel:
    """The email channel."""

    name = "email"

    def __init__(self, settings: EmailConfig, links: TrackingLinks) -> None:
        self.settings = settings
        self.links = links
        self.concurrency = settings.connections
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP | None] | None = None
        self._clients: set[aiosmtplib.SMTP] = set()

    async def start(self) -> None:
        self._idle = asyncio.LifoQueue()
        for _ in range(self.concurrency):
            self._idle.put_nowait(None)  # a slot; its connection is opened on first use

    async def close(self) -> None:
        for client in list(self._clients):
            await self._drop(client, quit_=True)

    def prepare(self, message: StoredMessage, rendered: Rendered) -> PreparedEmail:
        return build_email(message, rendered, self.links, self.settings)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.use_tls,
            start_tls=s.start_tls,
            timeout=s.timeout_s,
            username=s.username,
            password=s.password,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as e:
            raise TransientDeliveryError(f"cannot connect to {s.host}:{s.port}: {e}") from e
        self._clients.add(client)
        return client

    async def _drop(self, client: aiosmtplib.SMTP, quit_: bool = False) -> None:
        self._clients.discard(client)
        try:
            if quit_ and client.is_connected:
                await client.quit()
            else:
                client.close()
        except (aiosmtplib.SMTPException, OSError):
            client.close()

    async def deliver(self, prepared: Any, handover: HandOver) -> Delivery:
        assert self._idle is not None, "start() the channel first"
        email: PreparedEmail = prepared
        client = await self._idle.get()
        keep: aiosmtplib.SMTP | None = None
        try:
            if client is None or not client.is_connected:
                client = await self._connect()
            delivery = await self._transaction(client, email, handover)
            keep = client
            return delivery
        except PermanentDeliveryError:
            keep = client if client is not None and client.is_connected else None
            raise
        except TransientDeliveryError as e:
            if client is not None and client.is_connected and e.code is not None:
                keep = client  # a 4xx reply: the connection itself is fine
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
            raise TransientDeliveryError(f"connection failed: {type(e).__name__}: {e}") from e
        finally:
            if keep is None and client is not None:
                await self._drop(client)
            self._idle.put_nowait(keep)

    async def _transaction(
        self, client: aiosmtplib.SMTP, email: PreparedEmail, handover: HandOver
    ) -> Delivery:
        s = self.settings
        mail_options: list[str] = []
        rcpt_options: list[str] = []
        encoding = "ascii"
        if not (email.recipient.isascii() and email.envelope_from.isascii()):
            if not client.supports_extension("smtputf8"):
                raise PermanentDeliveryError(
                    "the address is not ASCII and the server does not offer SMTPUTF8"
                )
            mail_options.append("SMTPUTF8")
            encoding = "utf-8"
        if client.supports_extension("8bitmime"):
            mail_options.append("BODY=8BITMIME")
        if s.request_dsn and client.supports_extension("dsn"):
            mail_options += ["RET=HDRS", f"ENVID={email.message_id}"]
            notify = "FAILURE,DELAY" if s.delivered_on_accept else "SUCCESS,FAILURE,DELAY"
            rcpt_options.append(f"NOTIFY={notify}")
        try:
            await client.mail(email.envelope_from, options=mail_options, encoding=encoding)
        except aiosmtplib.SMTPSenderRefused as e:
            await self._reset(client)
            raise _refusal(e.code, e.message, "MAIL FROM refused", False) from e
        try:
            await client.rcpt(email.recipient, options=rcpt_options, encoding=encoding)
        except aiosmtplib.SMTPRecipientRefused as e:
            await self._reset(client)
            raise _refusal(e.code, e.message, "recipient refused", True) from e
        start = await client.execute_command(b"DATA")
        if start.code != 354:
            await self._reset(client)
            raise _refusal(start.code, start.message, "DATA refused", False)
        protocol = client.protocol
        assert protocol is not None
        # uvloop's transports are not asyncio.WriteTransport subclasses, but have its methods.
        transport = cast(asyncio.WriteTransport, protocol.transport)
        body = _DOT.sub(b"..", email.data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        if len(body) <= ONE_WRITE_BYTES and transport.get_write_buffer_size() == 0:
            # The socket's send buffer is empty (the last reply was read), so the whole message
            # and its dot go to the kernel in one write, straight after the hand-over commit.
            handover()
            protocol.write(body + b".\r\n")
        else:
            protocol.write(body)
            while transport.get_write_buffer_size() > 0:  # every byte of the body in the kernel
                await asyncio.sleep(0.0005)
            handover()
            protocol.write(b".\r\n")
        reply = await protocol.read_response(timeout=s.timeout_s)
        if reply.code != 250:
            raise _refusal(reply.code, reply.message, "message refused", False)
        properties = {"email_subject": email.subject, "smtp_reply": _reply(reply.code, reply.message)}
        return Delivery(_reply(reply.code, reply.message), None, s.delivered_on_accept, properties)

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
