"""Consent at send time from the privacy part: its decisions, asked through the ConsentCheck protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tailor.channels.policy import ConsentRequest, ConsentVerdict
from tailor.exceptions import TailorError

if TYPE_CHECKING:
    from tailor.identity.service import IdentityService
    from tailor.privacy.service import PrivacyService

_IDENTIFIER = {"email": "email", "sms": "phone"}


class PrivacyConsent:
    """Asks `PrivacyService.consent_for` about every marketing email and SMS.

    Transactional messages (a receipt, a password reset) and webhooks (to systems, not people)
    need no marketing consent and are allowed. A message enqueued without a profile id is checked
    for the profile that holds its address; with none, no consent can have been given.
    """

    def __init__(self, privacy: PrivacyService, identity: IdentityService) -> None:
        self.privacy = privacy
        self.identity = identity

    def check(self, requests: Sequence[ConsentRequest]) -> list[ConsentVerdict]:
        decided: dict[tuple[str | None, str, str, str], ConsentVerdict] = {}
        verdicts = []
        for r in requests:
            if r.channel not in _IDENTIFIER or not r.purpose.endswith("_marketing"):
                verdicts.append(ConsentVerdict(True))
                continue
            key = (r.profile_id, r.address, r.purpose, r.channel)
            if key not in decided:
                decided[key] = self._decide(r)
            verdicts.append(decided[key])
        return verdicts

    def _decide(self, r: ConsentRequest) -> ConsentVerdict:
        from tailor.identity.service import NotFoundError
        from tailor.privacy.exceptions import PersonNotFoundError

        profile_id = r.profile_id
        try:
            if profile_id is None:
                profile_id = self.privacy.resolve(f"{_IDENTIFIER[r.channel]}:{r.address}")
            decision = self.privacy.consent_for(profile_id, r.purpose, r.channel)
        except (NotFoundError, PersonNotFoundError) as e:
            # Nobody known by that id or address: nothing recorded, as for a known person without
            # a statement, so the privacy configuration's default decides.
            if self.privacy.config.marketing_requires_grant:
                return ConsentVerdict(False, f"{e}; {r.purpose} needs an explicit grant")
            return ConsentVerdict(True, f"{e}; {r.purpose} is allowed until refused")
        except TailorError as e:  # erased, or a purpose the privacy part does not know
            return ConsentVerdict(False, str(e))
        return ConsentVerdict(decision.allowed, decision.reason)
