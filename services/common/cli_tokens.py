"""Bearer tokens for the command line: ``--token-file``, ``$TCR_TOKEN``, or ``--token``.

A token on the command line is visible to every user of the machine (``ps``) and stays in the
shell's history, so each command that needs one also reads it from a file or the environment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

TOKEN_ENV = "TCR_TOKEN"


def add_token_options(parser: argparse.ArgumentParser, whose: str) -> None:
    """``--token`` and ``--token-file`` on ``parser``; ``whose`` says which token it needs."""
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--token-file",
        dest="token_from_file",
        type=_token_in_file,
        metavar="PATH",
        help=f"read {whose} from the first line of this file (or set ${TOKEN_ENV})",
    )
    given.add_argument(
        "--token",
        help=f"{whose}; visible to other users (ps) and kept in shell history: prefer "
        f"--token-file or ${TOKEN_ENV}",
    )


def token_of(args: argparse.Namespace) -> str | None:
    """The token given by ``--token``, ``--token-file`` or ``$TCR_TOKEN``, in that order."""
    from services.common.settings import TokenSettings  # here: `tcr --help` stays quick

    from_env = TokenSettings().token.get_secret_value()
    given: str | None = args.token or args.token_from_file or from_env or None
    return given.strip() if given is not None else None


def required_token(args: argparse.Namespace, command: str) -> str:
    """The token, or exit saying the three ways to give one."""
    token = token_of(args)
    if not token:
        raise SystemExit(
            f"{command}: a token is needed: --token-file PATH, ${TOKEN_ENV} or --token"
        )
    return token


def _token_in_file(path: str) -> str:
    try:
        with Path(path).open(encoding="utf-8") as lines:
            token = lines.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read the token from {path}: {exc}") from None
    if not token:
        raise argparse.ArgumentTypeError(f"{path} holds no token on its first line")
    return token
