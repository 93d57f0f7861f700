"""One rule for what free text may hold."""

from __future__ import annotations

import pytest

from services.common.text import text_problem


@pytest.mark.parametrize(
    "text", ["平顶山学院", "O'Brien & Sons, Ltd.", "R&D — 研发", "=SUM(A1)", "a b"]
)
def test_ordinary_text_in_any_script_passes(text: str) -> None:
    assert text_problem(text) is None


@pytest.mark.parametrize("code", [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)])
def test_one_line_text_refuses_every_control_character(code: int) -> None:
    assert f"U+{code:04X}" in (text_problem(f"a{chr(code)}b") or "")


@pytest.mark.parametrize("code", [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
def test_bidirectional_controls_are_refused_even_in_a_paragraph(code: int) -> None:
    problem = text_problem(f"a{chr(code)}b", multiline=True)
    assert problem is not None and "bidirectional" in problem


def test_a_paragraph_keeps_tabs_and_newlines_but_no_other_control() -> None:
    assert text_problem("一、\n\t二、", multiline=True) is None
    assert text_problem("a\r\nb", multiline=True) is not None
    assert text_problem("a\x00b", multiline=True) is not None


def test_a_lone_surrogate_is_refused() -> None:
    assert "surrogate" in (text_problem("a\udcffb") or "")
