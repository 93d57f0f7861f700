"""平顶山市's counties and districts (GB/T 2260) by code: Chinese name, English name."""

from __future__ import annotations

# In the order of the programme's listing; a local code not listed here is still local (the
# policy's city prefix decides that), it just has no name to show.
COUNTIES: dict[str, tuple[str, str]] = {
    "410402": ("新华区", "Xinhua District"),
    "410403": ("卫东区", "Weidong District"),
    "410404": ("石龙区", "Shilong District"),
    "410411": ("湛河区", "Zhanhe District"),
    "410421": ("宝丰县", "Baofeng County"),
    "410422": ("叶县", "Ye County"),
    "410423": ("鲁山县", "Lushan County"),
    "410425": ("郏县", "Jia County"),
    "410481": ("舞钢市", "Wugang City"),
    "410482": ("汝州市", "Ruzhou City"),
}


def county_name(code: str) -> str:
    """The Chinese name of a county of the city, or "" for any other code."""
    named = COUNTIES.get(code)
    return named[0] if named else ""
