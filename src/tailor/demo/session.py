"""One visit to the website, app or TV app, writing Segment messages as the SDK would."""

from __future__ import annotations

from math import log
from typing import Any

from tailor.demo.catalogue import SITE, STORE_NAME
from tailor.demo.channels import Arrival, utm_query
from tailor.demo.model import Device, Person
from tailor.demo.world import EventLabel, World

_APP = {"name": STORE_NAME, "version": "5.12.0", "build": "51200", "namespace": "com.hartleyhale.shop"}
_TV_APP = {"name": f"{STORE_NAME} TV", "version": "2.4.1", "build": "2041", "namespace": "com.hartleyhale.tv"}


class Visit:
    """A visit in progress: the device, the identities it carries, the clock and the current page."""

    __slots__ = (
        "_app",
        "_device",
        "_library",
        "_os",
        "_screen",
        "_ua",
        "_wifi",
        "anon",
        "arrival",
        "campaign",
        "device",
        "ip",
        "label",
        "landed",
        "page",
        "person",
        "t",
        "user",
        "user_id",
        "web",
        "world",
    )

    def __init__(
        self,
        world: World,
        person: Person,
        device: Device,
        t: int,
        ip: str,
        wifi: bool,
        arrival: Arrival,
        label: EventLabel,
    ) -> None:
        self.world = world
        self.person = person
        self.device = device
        self.t = t
        self.ip = ip
        self.arrival = arrival
        self.label = label
        self.anon = device.anonymous_id(world.cal.day_of(t))
        self.user: int | None = None
        self.user_id: str | None = None  # what the SDK sends: maybe someone else's on a family device
        self.set_user(world.device_user[device.index])
        p = device.profile
        self.web = p.kind in ("desktop", "mobile_web")
        self.page: dict[str, str] | None = None
        self.landed = False
        # Only events on the landing page still have the UTM tags in their URL.
        self.campaign = arrival.campaign
        # The parts of `context` that stay the same for the whole visit, copied into each message.
        self._ua = p.user_agent
        self._wifi = wifi
        self._library = {"name": p.library[0], "version": p.library[1]}
        self._app = _TV_APP if p.kind == "tv" else _APP
        self._device = {
            "id": device.device_id,
            "manufacturer": p.manufacturer,
            "model": p.model,
            "type": p.device_type,
        }
        self._os = {"name": p.os_name, "version": p.os_version}
        self._screen = {"width": p.screen[0], "height": p.screen[1]}

    def set_user(self, person: int | None) -> None:
        """Makes the SDK send a person's userId from now on (None: logged out)."""
        self.user = person
        self.user_id = None if person is None else self.world.pop.people[person].user_id

    def wait(self, mean_seconds: float) -> None:
        """Lets time pass between two actions (at least a second, exponentially distributed)."""
        self.t += 1_000 - int(mean_seconds * 1_000 * log(1.0 - self.world.dice.u()))

    def context(self) -> dict[str, Any]:
        """A fresh Segment `context` object for the next message."""
        # Built as whole literals: far cheaper than growing a dict key by key, and this runs per event.
        page = self.page
        if self.web and page is not None:
            ctx: dict[str, Any] = {
                "ip": self.ip,
                "userAgent": self._ua,
                "locale": "en-GB",
                "timezone": "Europe/London",
                "library": self._library.copy(),
                "page": page.copy(),
            }
        elif self.web:
            ctx = {
                "ip": self.ip,
                "userAgent": self._ua,
                "locale": "en-GB",
                "timezone": "Europe/London",
                "library": self._library.copy(),
            }
        else:
            ctx = {
                "ip": self.ip,
                "userAgent": self._ua,
                "locale": "en-GB",
                "timezone": "Europe/London",
                "library": self._library.copy(),
                "app": self._app.copy(),
                "device": self._device.copy(),
                "os": self._os.copy(),
                "screen": self._screen.copy(),
                "network": {"wifi": self._wifi},
            }
        if self.campaign is not None:
            ctx["campaign"] = self.campaign.copy()
        return ctx

    def _message(self, kind: str, user_id: str | None) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": kind, "messageId": "", "timestamp": self.world.cal.iso(self.t)}
        if user_id is not None:
            msg["userId"] = user_id
        msg["anonymousId"] = self.anon
        return msg

    def track(self, event: str, properties: dict[str, Any]) -> None:
        """Sends a track call."""
        w = self.world
        # The most frequent call, so its message is built inline as one literal.
        if self.user_id is None:
            msg: dict[str, Any] = {
                "type": "track",
                "messageId": "",
                "timestamp": w.cal.iso(self.t),
                "anonymousId": self.anon,
                "event": event,
                "properties": properties,
                "context": self.context(),
            }
        else:
            msg = {
                "type": "track",
                "messageId": "",
                "timestamp": w.cal.iso(self.t),
                "userId": self.user_id,
                "anonymousId": self.anon,
                "event": event,
                "properties": properties,
                "context": self.context(),
            }
        w.seq += 1
        w.pending.append((self.t, w.seq, self.label, msg))

    def view(self, name: str, path: str, title: str, extra: dict[str, Any] | None = None) -> None:
        """Sends a page call on the web, or a screen call in an app."""
        if self.landed:
            self.campaign = None  # the UTM tags stay behind on the landing page
        self.landed = True
        if self.web:
            path_only, _, search = path.partition("?")
            if search:
                search = "?" + search
            elif self.campaign is not None:
                search = utm_query(self.campaign)
            referrer = self.page["url"] if self.page is not None else self.arrival.referrer
            self.page = {
                "path": path_only,
                "referrer": referrer,
                "search": search,
                "title": title,
                "url": SITE + path_only + search,
            }
            props: dict[str, Any] = {"name": name, **self.page}
        else:
            props = {"name": name}
        if extra:
            props.update(extra)
        w = self.world
        kind = "page" if self.web else "screen"
        if self.user_id is None:
            msg: dict[str, Any] = {
                "type": kind,
                "messageId": "",
                "timestamp": w.cal.iso(self.t),
                "anonymousId": self.anon,
                "name": name,
                "properties": props,
                "context": self.context(),
            }
        else:
            msg = {
                "type": kind,
                "messageId": "",
                "timestamp": w.cal.iso(self.t),
                "userId": self.user_id,
                "anonymousId": self.anon,
                "name": name,
                "properties": props,
                "context": self.context(),
            }
        w.seq += 1
        w.pending.append((self.t, w.seq, self.label, msg))

    def identify(self, user_id: str | None, traits: dict[str, Any]) -> None:
        """Sends an identify call, with or without a userId."""
        msg = self._message("identify", user_id)
        msg["traits"] = traits
        msg["context"] = self.context()
        self.world.push(self.t, self.label, msg)

    def alias(self, user_id: str) -> None:
        """Sends an alias call tying the device's anonymousId to a new userId."""
        msg = self._message("alias", user_id)
        msg["previousId"] = self.anon
        msg["context"] = self.context()
        self.world.push(self.t, self.label, msg)

    def group(self, group_id: str, traits: dict[str, Any]) -> None:
        """Sends a group call tying the user to an account."""
        msg = self._message("group", self.user_id)
        msg["groupId"] = group_id
        msg["traits"] = traits
        msg["context"] = self.context()
        self.world.push(self.t, self.label, msg)
