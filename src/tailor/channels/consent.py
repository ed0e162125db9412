"""Consent at send time from the privacy part's records, asked through the ConsentCheck protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tailor.channels.policy import ConsentRequest, ConsentVerdict
from tailor.exceptions import TailorError

if TYPE_CHECKING:
    from tailor.privacy.service import PrivacyService
    from tailor.store.database import Database

_IDENTIFIER = {"email": "email", "sms": "phone"}

# The privacy part's decision for a whole claimed batch in one query: the latest statement per
# (profile, purpose) made for the channel or for all channels ('*'), as `ConsentReader.consent_for`
# reads it one at a time (a query per message held a broadcast to ~90 emails/s). Old ids of merged
# profiles are read through `profile_aliases`; a tombstone of the profile id means erased.
_BATCH = """
WITH req AS (SELECT unnest(?::VARCHAR[]) AS asked, unnest(?::VARCHAR[]) AS purpose,
                    unnest(?::VARCHAR[]) AS channel, unnest(?::VARCHAR[]) AS hash),
r AS (SELECT req.*, coalesce(a.profile_id, req.asked) AS profile_id
      FROM req LEFT JOIN profile_aliases a ON a.old_id = req.asked)
SELECT r.asked, r.purpose, r.channel,
       arg_max(c.status, (c.recorded_at, c.seq)), arg_max(c.origin, (c.recorded_at, c.seq)),
       arg_max(c.detail, (c.recorded_at, c.seq)), max(c.recorded_at), arg_max(c.seq, (c.recorded_at, c.seq)),
       arg_max(c.channel, (c.recorded_at, c.seq)),
       (SELECT max(erased_at) FROM privacy_tombstones t WHERE t.hash = r.hash)
FROM r LEFT JOIN consent_current c
  ON c.profile_id = r.profile_id AND c.purpose = r.purpose AND c.channel IN (r.channel, '*')
GROUP BY ALL
"""


class PrivacyConsent:
    """Asks the privacy part's consent records about every marketing email and SMS.

    Marketing email and SMS need `email_marketing` / `sms_marketing`: the latest statement for the
    channel (or all channels) decides; with none, `[privacy] marketing_requires_grant` does, as
    in `PrivacyService.consent_for`. An erased person is refused. Transactional messages (a
    receipt, a password reset) and webhooks (to systems, not people) need no marketing consent. A
    message without a profile id is checked, one at a time, for the profile holding its address.
    """

    def __init__(self, privacy: PrivacyService, db: Database) -> None:
        self.privacy = privacy
        self.db = db

    def check(self, requests: Sequence[ConsentRequest]) -> list[ConsentVerdict]:
        verdicts: list[ConsentVerdict | None] = [None] * len(requests)
        batch: list[int] = []
        for i, r in enumerate(requests):
            if r.channel not in _IDENTIFIER or not r.purpose.endswith("_marketing"):
                verdicts[i] = ConsentVerdict(True)
            elif r.profile_id is None:
                verdicts[i] = self._by_address(r)
            else:
                batch.append(i)
        if batch:
            for i, verdict in zip(batch, self._decide([requests[i] for i in batch]), strict=True):
                verdicts[i] = verdict
        return [v if v is not None else ConsentVerdict(False, "not decided") for v in verdicts]

    def _decide(self, requests: list[ConsentRequest]) -> list[ConsentVerdict]:
        asked = [str(r.profile_id) for r in requests]
        hashes = [self.privacy.hasher.of("profile", pid) for pid in asked]
        params = [asked, [r.purpose for r in requests], [r.channel for r in requests], hashes]
        found: dict[tuple[str, str, str], tuple[Any, ...]] = {
            (a, p, c): tuple(rest) for a, p, c, *rest in self.db.execute(_BATCH, params)
        }
        requires_grant = self.privacy.config.marketing_requires_grant
        out = []
        for r, pid in zip(requests, asked, strict=True):
            status, origin, detail, at, seq, where, erased = found.get(
                (pid, r.purpose, r.channel), (None,) * 7
            )
            if erased is not None:
                out.append(ConsentVerdict(False, f"the person was erased at {erased}"))
            elif status is not None:
                scope = "all channels" if where == "*" else where
                why = f" ({detail})" if detail else ""
                reason = f"{r.purpose} {status} for {scope} by {origin}{why} at {at} (event seq {seq})"
                out.append(ConsentVerdict(status == "granted", reason))
            elif requires_grant:
                out.append(
                    ConsentVerdict(
                        False, f"no consent recorded for {r.purpose} on {r.channel}; it needs a grant"
                    )
                )
            else:
                out.append(
                    ConsentVerdict(True, f"no consent recorded for {r.purpose}; allowed until refused")
                )
        return out

    def _by_address(self, r: ConsentRequest) -> ConsentVerdict:
        from tailor.identity.service import NotFoundError
        from tailor.privacy.exceptions import PersonNotFoundError

        try:
            profile_id = self.privacy.resolve(f"{_IDENTIFIER[r.channel]}:{r.address}")
        except (NotFoundError, PersonNotFoundError) as e:
            # Nobody known by that address: nothing recorded, so the configured default decides.
            if self.privacy.config.marketing_requires_grant:
                return ConsentVerdict(False, f"{e}; {r.purpose} needs an explicit grant")
            return ConsentVerdict(True, f"{e}; {r.purpose} is allowed until refused")
        except TailorError as e:  # erased
            return ConsentVerdict(False, str(e))
        known = ConsentRequest(profile_id, r.channel, r.address, r.purpose, r.message_id)
        return self._decide([known])[0]
