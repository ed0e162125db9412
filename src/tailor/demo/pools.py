"""Pools of British names, places and internet details the population is sampled from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from faker import Faker


@dataclass(frozen=True)
class Town:
    """A UK town: postcode area, dialling code and which local numbers are in use."""

    name: str
    postcode_areas: tuple[str, ...]
    districts: int
    area_code: str  # national significant digits without the trunk 0, e.g. "113" for 0113
    local_groups: tuple[int, ...]  # how local numbers are written, e.g. (3, 4) for 0113 496 0018
    leads: tuple[str, ...]  # allowed starts of the local number (unallocated ranges fail validation)
    weight: float
    store: str | None  # name of the shop in town, if there is one


TOWNS: tuple[Town, ...] = (
    Town(
        "London",
        ("E", "N", "SE", "SW", "W", "NW"),
        20,
        "20",
        (4, 4),
        ("3", "7", "8"),
        9.0,
        "London Oxford Street",
    ),
    Town("Birmingham", ("B",), 45, "121", (3, 4), tuple("234567"), 2.5, "Birmingham Bullring"),
    Town("Manchester", ("M",), 40, "161", (3, 4), tuple("23456789"), 2.5, "Manchester Arndale"),
    Town("Leeds", ("LS",), 29, "113", (3, 4), tuple("23458"), 1.8, "Leeds Trinity"),
    Town("Glasgow", ("G",), 80, "141", (3, 4), tuple("23456789"), 1.6, "Glasgow Buchanan Street"),
    Town("Liverpool", ("L",), 40, "151", (3, 4), tuple("23456789"), 1.2, "Liverpool ONE"),
    Town("Bristol", ("BS",), 41, "117", (3, 4), tuple("2349"), 1.2, "Bristol Cabot Circus"),
    Town("Sheffield", ("S",), 36, "114", (3, 4), tuple("2345"), 1.1, None),
    Town("Edinburgh", ("EH",), 55, "131", (3, 4), tuple("2345678"), 1.0, "Edinburgh Princes Street"),
    Town("Newcastle upon Tyne", ("NE",), 20, "191", (3, 4), tuple("23456789"), 0.9, "Newcastle Eldon Square"),
    Town("Nottingham", ("NG",), 25, "115", (3, 4), tuple("26789"), 0.8, None),
    Town("Cardiff", ("CF",), 24, "29", (4, 4), ("20",), 0.8, "Cardiff St David's"),
    Town("Leicester", ("LE",), 19, "116", (3, 4), tuple("234"), 0.7, None),
    Town("Belfast", ("BT",), 17, "28", (4, 4), ("90",), 0.7, None),
    Town("Southampton", ("SO",), 19, "23", (4, 4), ("80",), 0.6, None),
    Town("Brighton", ("BN",), 3, "1273", (6,), tuple("23456789"), 0.6, None),
    Town("Reading", ("RG",), 10, "118", (3, 4), tuple("2349"), 0.5, None),
    Town("York", ("YO",), 32, "1904", (6,), tuple("23456789"), 0.4, None),
    Town("Oxford", ("OX",), 4, "1865", (6,), tuple("23456789"), 0.4, None),
    Town("Cambridge", ("CB",), 5, "1223", (6,), tuple("23456789"), 0.4, None),
    Town("Norwich", ("NR",), 14, "1603", (6,), tuple("23456789"), 0.4, None),
    Town("Aberdeen", ("AB",), 25, "1224", (6,), tuple("23456789"), 0.4, None),
    Town("Exeter", ("EX",), 6, "1392", (6,), tuple("23456789"), 0.3, None),
    Town("Bath", ("BA",), 2, "1225", (6,), tuple("23456789"), 0.2, None),
)

# Prefixes of UK mobile numbers that libphonenumber accepts as valid in full.
MOBILE_PREFIXES = ("71", "72", "73", "74", "75", "78")

# Addresses use the reserved .example top-level domain (RFC 2606) so that no demo, journey or test
# can ever deliver mail to a real mailbox, while keeping the mix of big and small providers.
EMAIL_DOMAINS = (
    ("gmail.example", 30.0),
    ("googlemail.example", 3.0),
    ("hotmail.example", 14.0),
    ("outlook.example", 9.0),
    ("yahoo.example", 8.0),
    ("icloud.example", 9.0),
    ("btinternet.example", 6.0),
    ("sky.example", 4.0),
    ("live.example", 4.0),
    ("aol.example", 2.0),
    ("virginmedia.example", 3.0),
    ("talktalk.example", 2.0),
)
WORK_DOMAINS = (
    "nhs.example",
    "acme-logistics.example",
    "brightwell.example",
    "council.example",
    "northgate-law.example",
    "pinecrest.example",
    "harbourbank.example",
)

# Identifiers that broken forms and test scripts send; they belong to nobody.
JUNK_USER_IDS = ("null", "undefined", "0", "", "NaN", "[object Object]")
JUNK_EMAILS = ("test@test.com", "", "null", "noemail@noemail.com", "a@a.com", "n/a")

NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Robbie"),
    "William": ("Will", "Bill", "Billy"),
    "James": ("Jim", "Jamie"),
    "Thomas": ("Tom", "Tommy"),
    "Christopher": ("Chris",),
    "Michael": ("Mike", "Mick"),
    "Daniel": ("Dan", "Danny"),
    "Alexander": ("Alex", "Sandy"),
    "Samuel": ("Sam",),
    "Jonathan": ("Jon", "Johnny"),
    "Matthew": ("Matt",),
    "Edward": ("Ed", "Ted", "Eddie"),
    "Anthony": ("Tony", "Ant"),
    "Richard": ("Rich", "Richie", "Dick"),
    "Nicholas": ("Nick",),
    "Benjamin": ("Ben",),
    "Joseph": ("Joe",),
    "Stephen": ("Steve",),
    "Steven": ("Steve",),
    "Andrew": ("Andy", "Drew"),
    "Peter": ("Pete",),
    "David": ("Dave", "Davy"),
    "Philip": ("Phil",),
    "Kenneth": ("Ken", "Kenny"),
    "Timothy": ("Tim",),
    "Frederick": ("Fred", "Freddie"),
    "Gregory": ("Greg",),
    "Raymond": ("Ray",),
    "Ronald": ("Ron", "Ronnie"),
    "Gerald": ("Gerry",),
    "Elizabeth": ("Liz", "Beth", "Lizzie"),
    "Katherine": ("Kate", "Kathy", "Katie"),
    "Catherine": ("Cathy", "Kate", "Cat"),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "Jennifer": ("Jen", "Jenny"),
    "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky", "Tori"),
    "Susan": ("Sue", "Susie"),
    "Patricia": ("Pat", "Trish"),
    "Deborah": ("Debbie", "Deb"),
    "Charlotte": ("Charlie", "Lottie"),
    "Abigail": ("Abby",),
    "Samantha": ("Sam", "Sammy"),
    "Jessica": ("Jess",),
    "Eleanor": ("Ellie", "Nell"),
    "Olivia": ("Liv",),
    "Christine": ("Chris",),
    "Alexandra": ("Alex", "Lexi"),
    "Joanne": ("Jo",),
    "Jacqueline": ("Jackie",),
    "Natalie": ("Nat",),
    "Nicola": ("Nicky",),
    "Caroline": ("Caz",),
    "Amanda": ("Mandy",),
    "Pamela": ("Pam",),
    "Barbara": ("Babs",),
    "Gillian": ("Gill",),
    "Josephine": ("Jo", "Josie"),
    "Theresa": ("Tess",),
}

_STREET_STEMS = (
    "Church",
    "Station",
    "Mill",
    "Victoria",
    "Albert",
    "Queen's",
    "King's",
    "Park",
    "Manor",
    "Chapel",
    "Grange",
    "Meadow",
    "Orchard",
    "Oak",
    "Elm",
    "Ash",
    "Willow",
    "Beech",
    "Windsor",
    "York",
    "Richmond",
    "New",
    "Green",
    "Hill",
    "School",
    "Castle",
    "Bridge",
)
_STREET_SUFFIXES = (
    ("Road", 8.0),
    ("Street", 5.0),
    ("Lane", 3.0),
    ("Avenue", 2.5),
    ("Close", 2.5),
    ("Drive", 2.0),
    ("Gardens", 1.5),
    ("Way", 1.5),
    ("Crescent", 1.2),
    ("Grove", 1.2),
    ("Place", 0.8),
    ("Terrace", 0.8),
    ("Court", 0.6),
    ("Mews", 0.4),
    ("Rise", 0.4),
    ("Walk", 0.3),
)
_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True)
class Pools:
    """Name and street pools built once per seed with Faker and then sampled with numpy."""

    female: np.ndarray
    male: np.ndarray
    surnames: np.ndarray
    streets: np.ndarray
    street_weights: np.ndarray


@lru_cache(maxsize=8)
def build_pools(seed: int) -> Pools:
    """Faker-drawn pools of first names, surnames and street names for a seed."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    female = np.array([fake.first_name_female() for _ in range(1500)])
    male = np.array([fake.first_name_male() for _ in range(1500)])
    surnames = np.array([fake.last_name() for _ in range(3000)])
    stems = sorted(set(_STREET_STEMS) | {fake.last_name() for _ in range(300)})
    names = [f"{stem} {suffix}" for stem in stems for suffix, _ in _STREET_SUFFIXES]
    weights = np.array(
        [w * (3.0 if stem in _STREET_STEMS else 1.0) for stem in stems for _, w in _STREET_SUFFIXES]
    )
    names += ["High Street", "The Green", "Market Place", "The Avenue"]
    weights = np.concatenate([weights, [40.0, 6.0, 4.0, 4.0]])
    return Pools(female, male, surnames, np.array(names), weights / weights.sum())


def postcode(rng: np.random.Generator, town: Town) -> str:
    """A postcode in a town's postcode area."""
    area = town.postcode_areas[int(rng.integers(len(town.postcode_areas)))]
    district = int(rng.integers(1, town.districts + 1))
    letters = "".join(_POSTCODE_LETTERS[int(i)] for i in rng.integers(0, len(_POSTCODE_LETTERS), 2))
    return f"{area}{district} {int(rng.integers(1, 10))}{letters}"


def home_ip(rng: np.random.Generator) -> str:
    """A residential broadband IPv4 address."""
    first = (2, 5, 31, 37, 46, 62, 77, 78, 79, 81, 82, 86, 87, 90, 94, 109, 151, 176, 212, 217)
    a = first[int(rng.integers(len(first)))]
    b, c, d = (int(x) for x in rng.integers(1, 255, 3))
    return f"{a}.{b}.{c}.{d}"


def carrier_ips(rng: np.random.Generator, n: int = 48) -> list[str]:
    """Egress addresses of mobile networks; carrier NAT puts many customers behind each one."""
    prefixes = ("92.40", "82.132", "213.205", "31.94", "148.252", "85.255")
    return [
        f"{prefixes[i % len(prefixes)]}.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}"
        for i in range(n)
    ]
