"""Exchange item codes: ``wantToBuy`` takes the game's two-digit ``itemCode``, chat types names.

The codes are the game's own (as the public client alevinru/CWClient lists them in
``src/db/itemsByName.js``); only the basic resources are listed here, the ones the simulator
trades. Any other item can be bought by its code (``cw buy 39 5 12``).
"""

from __future__ import annotations

import re

ITEM_CODES: dict[str, str] = {
    "thread": "01",
    "stick": "02",
    "pelt": "03",
    "bone": "04",
    "coal": "05",
    "charcoal": "06",
    "powder": "07",
    "iron ore": "08",
    "cloth": "09",
    "silver ore": "10",
    "magic stone": "13",
    "steel": "19",
    "leather": "20",
    "bone powder": "21",
    "string": "22",
    "coke": "23",
    "metal plate": "33",
}
ITEM_NAMES: dict[str, str] = {code: name.capitalize() for name, code in ITEM_CODES.items()}
_CODE = re.compile(r"[a-z]?\d{1,3}")


def item_code(text: str) -> str | None:
    """The code for an item name or code as typed, or None when it is not known."""
    key = " ".join(text.lower().split())
    if key in ITEM_CODES:
        return ITEM_CODES[key]
    if _CODE.fullmatch(key):
        return key
    return None


def item_name(code: str) -> str:
    """The name for a code, or the code itself."""
    return ITEM_NAMES.get(code, code)
