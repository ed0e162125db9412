"""Telling machine opens and clicks from people's, so they can be excluded from open and click rates.

What is flagged, and why:

- Apple Mail Privacy Protection fetches every image of every message through Apple's proxies
  when the message is downloaded, opened or not. The proxies send the bare User-Agent
  `Mozilla/5.0` (reported to ua-parser, uap-core issue 509) from Apple's networks (17.0.0.0/8,
  plus the iCloud Private Relay egress ranges, which an operator can add to `proxy_networks`).
- Security gateways (Barracuda, Proofpoint, Mimecast, Cisco, Trend Micro, ...) open and click
  every message on its way in: they name themselves in the User-Agent, send HEAD requests,
  act within seconds of delivery, click every link at once, and follow links people cannot see.
  So: known scanner agents and generic HTTP clients, no User-Agent, HEAD, a hit within
  `min_human_seconds` of sending, a click on the invisible honeypot link, and a burst of
  several links of one message clicked within `burst_seconds` by the same client.
- Gmail's image proxy (`GoogleImageProxy`) loads images when a person opens the message, so it
  counts as a person, marked `proxy` (it caches, so later opens by the same person are not seen).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

APPLE_NETWORKS = ("17.0.0.0/8",)
_SCANNERS = re.compile(
    r"barracuda|proofpoint|mimecast|cisco|ironport|trend ?micro|\btmes\b|forti(mail|net|guard)|sophos"
    r"|symantec|messagelabs|forcepoint|trustwave|zscaler|checkpoint|check point|spamtitan|mailguard"
    r"|bot\b|bot/|crawler|spider|scanner|preview|headless|phantomjs|python-requests|python-urllib"
    r"|aiohttp|httpx|curl/|wget/|go-http-client|java/|okhttp|libwww|apache-httpclient|node-fetch|axios",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Hit:
    """One request to a tracking URL."""

    kind: str
    """"open" or "click"."""
    message_id: str
    at: float
    ip: str | None
    user_agent: str
    method: str
    link_id: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a hit came from a machine, and the evidence."""

    machine: bool
    reason: str | None = None
    proxy: str | None = None


def client_key(ip: str | None, user_agent: str) -> str:
    """A short hash that tells two hits from the same client apart without storing the IP address."""
    return hashlib.sha256(f"{ip}\0{user_agent}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


class MachineDetector:
    """Classifies opens and clicks by agent, network, method, timing and honeypot."""

    def __init__(
        self,
        proxy_networks: Sequence[str] = APPLE_NETWORKS,
        min_human_seconds: float = 5.0,
        burst_seconds: float = 2.0,
        burst_links: int = 3,
    ) -> None:
        self.networks = [ipaddress.ip_network(n) for n in proxy_networks]
        self.min_human_seconds = min_human_seconds
        self.burst_seconds = burst_seconds
        self.burst_links = burst_links

    def _apple(self, ip: str | None) -> bool:
        if ip is None:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in n for n in self.networks)

    def classify(
        self,
        hit: Hit,
        sent_at: float | None,
        recent: Sequence[tuple[str, str | None, float, str | None]] = (),
    ) -> Verdict:
        """The verdict for `hit`; `recent`: the message's earlier hits as (client, link_id, at, reason)."""
        ua = hit.user_agent.strip()
        if hit.kind == "open" and (ua == "Mozilla/5.0" or self._apple(hit.ip)):
            return Verdict(True, "apple_mail_privacy_protection")
        if not ua:
            return Verdict(True, "no_user_agent")
        if _SCANNERS.search(ua):
            return Verdict(True, "scanner_user_agent")
        if hit.method == "HEAD":
            return Verdict(True, "head_request")
        if hit.link_id == "_hp":
            return Verdict(True, "honeypot_link")
        if sent_at is not None and hit.at - sent_at < self.min_human_seconds:
            return Verdict(True, "too_soon_after_send")
        if hit.kind == "click":
            client = client_key(hit.ip, hit.user_agent)
            near = [r for r in recent if r[0] == client and abs(hit.at - r[2]) <= self.burst_seconds]
            if any(r[1] == "_hp" for r in near):
                return Verdict(True, "honeypot_link")
            links = {r[1] for r in near if r[1] is not None} | {hit.link_id}
            if len(links) >= self.burst_links:
                return Verdict(True, "click_burst")
        if "googleimageproxy" in ua.lower():
            return Verdict(False, None, "google_image_proxy")
        return Verdict(False)
