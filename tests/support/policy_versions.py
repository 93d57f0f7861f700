"""Policy files for schedule tests: the bundled one, and versions of it for other years."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

BUNDLED = (files("services.schemas") / "policy" / "pingdingshan-2020.toml").read_text("utf-8")


def version(text: str, name: str, years: tuple[int, int], **rates: tuple[str, str]) -> str:
    """The bundled file as another version: its name, its years, and (rate, cap) by category."""
    text = text.replace('version = "pingdingshan-2020.1"', f'version = "{name}"')
    text = text.replace("applies_to = [2020, 2025]", f"applies_to = [{years[0]}, {years[1]}]")
    for category, (rate, cap) in rates.items():
        rule = rf'(\[categories\.{category}\][^\n]*\nrate = )"[0-9.]+"\ncap = "[0-9.]+"'
        text, changed = re.subn(rule, rf'\1"{rate}"\ncap = "{cap}"', text)
        assert changed == 1
    return text


UNTIL_2023 = version(BUNDLED, "pingdingshan-2020.1", (2020, 2023))
FROM_2024 = version(
    BUNDLED,
    "pingdingshan-2024.1",
    (2024, 2025),
    absorption=("0.15", "100000.00"),
    output=("0.20", "400000.00"),
    broker=("0.02", "200000.00"),
)


def two_versions(folder: Path) -> Path:
    """``folder`` holding the bundled policy for 2020–2023 and FROM_2024 for 2024–2025."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pingdingshan-2020.toml").write_text(UNTIL_2023, "utf-8")
    (folder / "pingdingshan-2024.toml").write_text(FROM_2024, "utf-8")
    return folder
