"""Personal names to a match key: one spelling per name however it was typed or encoded."""

from __future__ import annotations

import re
import unicodedata

# Letters that Unicode does not decompose into a base letter and an accent.
_FOLDS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "\u0131": "i", "ŧ": "t", "ð": "d"}
    | {"æ": "ae", "œ": "oe", "þ": "th"}
)
# O'Brien and OBrien are the same name; curly and modifier apostrophes are as common as straight ones.
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc\u02bb`\u00b4]")
_SEPARATORS = re.compile(r"[\W_]+")


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise_name(text: str) -> tuple[str | None, str | None]:
    """A trimmed name as (match key, None), or (None, why it holds no name).

    The key is NFKC-compatible, case-folded and free of accents, with apostrophes dropped and
    any run of spaces, hyphens and other punctuation turned into one space: "  Zoë  O'Brien-Smith"
    becomes "zoe obrien smith".
    """
    # Case folding can itself produce combining marks (İ folds to i + dot above), so marks are
    # stripped on both sides of it.
    # Apostrophes go first too, as NFKD splits some of them into a space and a mark.
    key = _strip_marks(_strip_marks(_APOSTROPHES.sub("", text)).casefold()).translate(_FOLDS)
    key = _SEPARATORS.sub(" ", _APOSTROPHES.sub("", key)).strip()
    # NFKD splits Hangul syllables into jamo; NFC puts them back together.
    key = unicodedata.normalize("NFC", key)
    if not key:
        return None, "invalid: no letters or digits in the name"
    return key, None
