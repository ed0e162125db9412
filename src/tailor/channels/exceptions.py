"""Errors of the messaging half: outbox, templates, channels and tracking links."""

from __future__ import annotations

from dataclasses import dataclass

from tailor.exceptions import TailorError, TerminalError, TransientError


class ChannelError(TailorError):
    """Base class of the errors the messaging package raises."""


@dataclass(frozen=True)
class TemplateProblem:
    """One error of a template: which part, where in it, and what is wrong."""

    part: str
    """The part of the template: "subject", "html", "text", "body" or "payload"."""
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.part}:{self.line}" if self.line is not None else self.part
        return f"{where}: {self.message}"


class TemplateError(ChannelError, TerminalError):
    """A template that cannot be saved or rendered; carries every problem found."""

    def __init__(self, template: str, problems: list[TemplateProblem]) -> None:
        listed = "; ".join(str(p) for p in problems)
        super().__init__(f"template {template!r}: {listed}")
        self.template = template
        self.problems = problems


class UnknownTemplateError(ChannelError, TerminalError):
    """No template of that name (and version) is saved."""


class DeliveryError(ChannelError):
    """A channel could not deliver a message."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentDeliveryError(DeliveryError, TerminalError):
    """The receiving side refused the message for good (SMTP 5xx, HTTP 4xx): not retried."""

    def __init__(self, message: str, code: int | None = None, bounce: bool = False) -> None:
        super().__init__(message, code)
        self.bounce = bounce
        """Whether the refusal names the recipient (a hard bounce) rather than the message."""


class TransientDeliveryError(DeliveryError, TransientError):
    """The message may go through later (SMTP 4xx, HTTP 5xx or 429, a dropped connection)."""


class TokenError(ChannelError, TerminalError):
    """A tracking link's token is malformed, forged or was made for another purpose."""


class OutboxError(ChannelError, TerminalError):
    """A message cannot be enqueued as given; carries every field error."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
