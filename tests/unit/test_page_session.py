"""The finance page's session cookie: sealed, so it neither reads nor forges; it expires."""

from __future__ import annotations

import time

from services.common.web.session import LIFETIME_SECONDS, Sessions
from services.subsidy.settings import SubsidySettings


def test_a_sealed_session_opens_with_its_token_and_form_secret() -> None:
    sessions = Sessions("a passphrase")
    cookie, session = sessions.seal("the-officers-token")

    opened = sessions.open(cookie)

    assert opened == session and opened.token == "the-officers-token"
    assert "the-officers-token" not in cookie
    assert opened.csrf_matches(session.csrf)
    assert not opened.csrf_matches(None) and not opened.csrf_matches(session.csrf[:-1] + "x")


def test_a_cookie_sealed_by_another_secret_or_altered_does_not_open() -> None:
    cookie, _ = Sessions("one").seal("token")

    assert Sessions("another").open(cookie) is None
    assert Sessions("one").open(cookie[:-4] + "AAAA") is None
    assert Sessions("one").open("") is None


def test_a_session_expires_after_a_working_day() -> None:
    sessions = Sessions("one")
    cookie, _ = sessions.seal("token")

    assert sessions.open(cookie, now=time.time() + LIFETIME_SECONDS - 60) is not None
    assert sessions.open(cookie, now=time.time() + LIFETIME_SECONDS + 60) is None


def test_settings_draw_a_secret_of_their_own_unless_given_one() -> None:
    drawn = [SubsidySettings().session_secret.get_secret_value() for _ in range(2)]
    given = SubsidySettings(session_secret="shared by the replicas")

    assert drawn[0] != drawn[1] and min(map(len, drawn)) >= 32
    assert given.session_secret.get_secret_value() == "shared by the replicas"
    assert "shared" not in repr(given)


def test_the_sign_in_forms_token_is_bound_to_its_pre_session_cookie_and_the_secret() -> None:
    sessions = Sessions("a passphrase")
    pre, other = Sessions.pre_session(), Sessions.pre_session()
    token = sessions.sign_in_csrf(pre)

    assert pre != other and token != pre
    assert sessions.sign_in_allowed(pre, token)
    assert not sessions.sign_in_allowed(other, token)
    assert not sessions.sign_in_allowed(pre, Sessions("another").sign_in_csrf(pre))
    assert not sessions.sign_in_allowed(None, token) and not sessions.sign_in_allowed(pre, None)
    assert not sessions.sign_in_allowed(pre, "")
