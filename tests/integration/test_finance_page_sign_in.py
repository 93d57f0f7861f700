"""The finance page's sign-in form against login CSRF: a sign-in counts only with the form's
token, an HMAC of the pre-session cookie the form set in the same browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from services.common.web.session import COOKIE, PRE_COOKIE
from services.subsidy.app import create_app
from services.subsidy.settings import SubsidySettings
from tests.conftest import Tokens


@pytest.fixture
def app(tmp_path: Path, tokens: Tokens) -> object:
    settings = SubsidySettings(
        subsidy_database_url=f"sqlite:///{tmp_path}/subsidy.db",
        tokens_file=tokens.path,
        registry_url="http://127.0.0.1:9",  # never reached: nothing here posts a payout
    )
    return create_app(settings)


@pytest.fixture
def browser(app: object) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:  # type: ignore[arg-type]
        yield client


def _csrf(html: str) -> str:
    (token,) = re.findall(r'<input type="hidden" name="csrf" value="([^"]+)">', html)
    return token


def test_the_sign_in_form_sets_a_pre_session_cookie_and_carries_its_token(
    browser: TestClient,
) -> None:
    form = browser.get("/")
    cookie = form.cookies.get(PRE_COOKIE)
    assert form.status_code == 200 and cookie
    assert "httponly" in form.headers["set-cookie"].lower()
    assert "samesite=strict" in form.headers["set-cookie"].lower()
    assert _csrf(form.text) != cookie  # an HMAC of it, not the value itself
    assert _csrf(browser.get("/").text) == _csrf(form.text)  # the same while the cookie lasts


@pytest.mark.parametrize("sent", [None, "", "forged"], ids=["missing", "empty", "forged"])
def test_a_sign_in_without_the_forms_token_is_refused_and_opens_no_session(
    browser: TestClient, tokens: Tokens, sent: str | None
) -> None:
    browser.get("/")
    fields = {"token": tokens.finance} | ({} if sent is None else {"csrf": sent})
    answer = browser.post("/sign-in", data=fields)
    assert answer.status_code == 403, answer.text
    assert "表单已失效" in answer.text
    assert COOKIE not in answer.cookies


def test_a_token_from_another_browsers_form_or_without_the_cookie_is_refused(
    app: object, browser: TestClient, tokens: Tokens
) -> None:
    theirs = _csrf(browser.get("/").text)
    with TestClient(app, follow_redirects=False) as other:  # type: ignore[arg-type]
        answer = other.post("/sign-in", data={"token": tokens.finance, "csrf": theirs})
        assert answer.status_code == 403, "no pre-session cookie: refused"
        other.get("/")  # a cookie of its own, which the other form's token is not for
        answer = other.post("/sign-in", data={"token": tokens.finance, "csrf": theirs})
        assert answer.status_code == 403
        assert COOKIE not in answer.cookies


def test_a_sign_in_with_the_forms_token_opens_a_session(
    browser: TestClient, tokens: Tokens
) -> None:
    csrf = _csrf(browser.get("/").text)
    answer = browser.post("/sign-in", data={"token": tokens.finance, "csrf": csrf})
    assert answer.status_code == 303, answer.text
    assert answer.cookies.get(COOKIE)
    refused = browser.post("/sign-in", data={"token": "not-a-token", "csrf": csrf})
    assert refused.status_code == 403  # the pre-session cookie went with the sign-in
