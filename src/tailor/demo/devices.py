"""Browsers, phones, tablets and TVs, as Segment SDKs describe them."""

from __future__ import annotations

from tailor.demo.model import DeviceProfile

_AJS = ("analytics.js", "npm:next-1.72.0")
_SWIFT = ("analytics-swift", "1.6.1")
_KOTLIN = ("analytics-kotlin", "1.16.3")
_CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit"
_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
_ANDROID = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko)"
_IOS_APP = "Hartley%20%26%20Hale/{v} CFNetwork/1568.100.1 Darwin/24.0.0"
_DALVIK = "Dalvik/2.1.0 (Linux; U; Android {v}; {model} Build/UP1A.231005.007)"

# fmt: off
_DESKTOP = (
    DeviceProfile("desktop", f"{_CHROME} Safari/537.36", "Windows", "10", "", "", "", _AJS, (1920, 1080)),
    DeviceProfile("desktop", f"{_CHROME} Safari/537.36 Edg/130.0.0.0", "Windows", "11", "", "", "", _AJS,
                  (1536, 864)),
    DeviceProfile("desktop", f"{_MAC}/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Mac OS X",
                  "15.1", "", "", "", _AJS, (1440, 900)),
    DeviceProfile("desktop", f"{_MAC}/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "Mac OS X",
                  "14.6", "", "", "", _AJS, (1512, 982)),
    DeviceProfile("desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 "
                  "Firefox/132.0", "Windows", "10", "", "", "", _AJS, (1366, 768)),
)
_MOBILE_WEB = (
    DeviceProfile("mobile_web", _IPHONE.format(v="18_1") + " Version/18.1 Mobile/15E148 Safari/604.1", "iOS",
                  "18.1", "Apple", "iPhone", "", _AJS, (393, 852)),
    DeviceProfile("mobile_web", _IPHONE.format(v="17_6") + " Version/17.6 Mobile/15E148 Safari/604.1", "iOS",
                  "17.6", "Apple", "iPhone", "", _AJS, (390, 844)),
    DeviceProfile("mobile_web", f"{_ANDROID} Chrome/130.0.0.0 Mobile Safari/537.36", "Android", "14",
                  "samsung", "SM-S921B", "", _AJS, (384, 832)),
    DeviceProfile("mobile_web", f"{_ANDROID} SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
                  "Android", "14", "samsung", "SM-A546B", "", _AJS, (384, 854)),
    DeviceProfile("mobile_web", "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
                  "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "iOS", "17.6", "Apple",
                  "iPad", "", _AJS, (820, 1180)),
)
_APP = (
    DeviceProfile("app", _IOS_APP.format(v="5.12.0"), "iOS", "18.1", "Apple", "iPhone16,2", "ios", _SWIFT,
                  (430, 932)),
    DeviceProfile("app", _IOS_APP.format(v="5.11.2"), "iOS", "17.6", "Apple", "iPhone14,5", "ios", _SWIFT,
                  (390, 844)),
    DeviceProfile("app", _DALVIK.format(v="14", model="SM-S921B"), "Android", "14", "samsung", "SM-S921B",
                  "android", _KOTLIN, (1080, 2340)),
    DeviceProfile("app", _DALVIK.format(v="15", model="Pixel 8"), "Android", "15", "Google", "Pixel 8",
                  "android", _KOTLIN, (1080, 2400)),
)
# Family tablets, used through the app by the whole household.
_TABLET_APP = (
    DeviceProfile("app", _IOS_APP.format(v="5.12.0"), "iPadOS", "18.1", "Apple", "iPad13,18", "ios", _SWIFT,
                  (820, 1180)),
    DeviceProfile("app", _DALVIK.format(v="14", model="SM-X510"), "Android", "14", "samsung", "SM-X510",
                  "android", _KOTLIN, (1200, 1920)),
)
_TV = (
    DeviceProfile("tv", "Mozilla/5.0 (SMART-TV; LINUX; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "7.0 TV Safari/537.36", "Tizen", "7.0", "Samsung", "QE55Q80C", "tv", _KOTLIN, (1920, 1080)),
    DeviceProfile("tv", "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/87.0.4280.88 Safari/537.36 WebAppManager", "webOS", "23", "LG", "OLED55C3", "tv",
                  _KOTLIN, (1920, 1080)),
    DeviceProfile("tv", "AppleTV14,1/18.1", "tvOS", "18.1", "Apple", "AppleTV14,1", "tv", _SWIFT,
                  (1920, 1080)),
)
# fmt: on

PROFILES: dict[str, tuple[DeviceProfile, ...]] = {
    "desktop": _DESKTOP,
    "mobile_web": _MOBILE_WEB,
    "app": _APP,
    "tv": _TV,
    "tablet": _TABLET_APP,
}

# How many of a person's own devices of each kind there are, as shares of all personal devices.
PERSONAL_MIX = {"desktop": 0.3, "mobile_web": 0.38, "app": 0.26, "tv": 0.06}
# Which kind a shared family device is: a desktop PC, an app on a tablet or a smart TV.
SHARED_MIX = {"desktop": 0.35, "tablet": 0.4, "tv": 0.25}
# How often each kind clears its cookies or reinstalls (resets per 180 days); Safari's tracking
# prevention makes iPhone browsers the worst.
RESETS_PER_180_DAYS = {"desktop": 0.5, "mobile_web": 1.2, "app": 0.15, "tv": 0.05, "tablet": 0.15}
