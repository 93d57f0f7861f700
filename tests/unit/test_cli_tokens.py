"""Every command that takes a token takes it from a file or the environment as well."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from services.cli import build_parser
from services.common.cli_tokens import add_token_options, token_of


def commands_with_a_token(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= {f"{name} {k}".strip(): v for k, v in commands_with_a_token(sub).items()}
    if any("--token" in a.option_strings for a in parser._actions):
        found[""] = parser
    return found


def test_every_command_taking_a_token_also_takes_a_token_file_and_warns_about_token() -> None:
    commands = commands_with_a_token(build_parser())

    assert set(commands) >= {
        "audit export",
        "audit verify",
        "audit compare",
        "audit report",
        "demo load",
    }
    for name, parser in commands.items():
        options = {o: a for a in parser._actions for o in a.option_strings}
        assert "--token-file" in options, name
        assert "visible to other users" in (options["--token"].help or ""), name


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_token_options(parser, "a token")
    return parser.parse_args(argv)


def test_the_token_comes_from_the_option_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TCR_TOKEN", "from-env")
    token_file = tmp_path / "t"
    token_file.write_text("from-file\n")

    assert token_of(parse("--token", "given")) == "given"
    assert token_of(parse("--token-file", str(token_file))) == "from-file"
    assert token_of(parse()) == "from-env"
    monkeypatch.delenv("TCR_TOKEN")
    assert token_of(parse()) is None


def test_an_empty_token_file_and_two_ways_at_once_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")

    with pytest.raises(SystemExit):
        parse("--token-file", str(empty))
    assert "holds no token on its first line" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--token", "a", "--token-file", str(empty))
