"""A page's session: the signed-in official's token sealed in a cookie, with a CSRF secret; and
before it, the sign-in form's own CSRF token, bound to a pre-session cookie. The finance page
and the station page both use it, each under its own cookie names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

COOKIE = "tcr_session"
# Set with the sign-in form: a random value whose HMAC the form carries, so a sign-in posted
# from another site (which can neither read this cookie nor compute the HMAC) is refused, and
# no one can sign an officer's browser in as someone else (login CSRF).
PRE_COOKIE = "tcr_pre_session"
# A working day: an officer signs in each morning, and a cookie left behind dies by night.
LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    """A signed-in officer: the bearer token the page acts with, and the form secret that
    proves a POST came from one of the page's own forms."""

    token: str
    csrf: str

    def csrf_matches(self, sent: str | None) -> bool:
        """Whether a form sent this session's CSRF secret (compared in constant time)."""
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class Sessions:
    """Seals sessions into cookie values and opens them again.

    Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) rather than a signature alone:
    the cookie carries the officer's bearer token, which the approve action needs to post to
    the registry as that officer, and which must not be readable from a copied cookie."""

    def __init__(self, secret: str) -> None:
        # Any passphrase: Fernet wants 32 bytes in URL-safe base64.
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))
        self._form_key = hashlib.sha256(b"sign-in form\0" + secret.encode()).digest()

    @staticmethod
    def pre_session() -> str:
        """A new pre-session cookie value, set with the sign-in form."""
        return secrets.token_urlsafe(32)

    def sign_in_csrf(self, pre_session: str) -> str:
        """The sign-in form's CSRF token for this pre-session cookie value."""
        mac = hmac.new(self._form_key, pre_session.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def sign_in_allowed(self, pre_session: str | None, sent: str | None) -> bool:
        """Whether a sign-in came from the form this browser was given: the token it sent is
        the one for its pre-session cookie (compared in constant time)."""
        if not pre_session or not sent:
            return False
        return hmac.compare_digest(sent.encode(), self.sign_in_csrf(pre_session).encode())

    def seal(self, token: str) -> tuple[str, Session]:
        """A new session for this token, and the cookie value that carries it."""
        session = Session(token, secrets.token_urlsafe(32))
        sealed = self._fernet.encrypt(orjson.dumps({"t": session.token, "c": session.csrf}))
        return sealed.decode(), session

    def open(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries, or None when it is absent, forged, sealed by another
        secret, or older than :data:`LIFETIME_SECONDS` (at ``now``, epoch seconds)."""
        if not cookie:
            return None
        at = int(time.time() if now is None else now)
        try:
            data = orjson.loads(self._fernet.decrypt_at_time(cookie.encode(), LIFETIME_SECONDS, at))
            return Session(str(data["t"]), str(data["c"]))
        except (InvalidToken, orjson.JSONDecodeError, KeyError, TypeError):
            return None


# -- the cookies, as both pages set them (each under its own names) ---------------------------


def _cookie_options(request: Request) -> dict[str, Any]:
    return {
        "max_age": LIFETIME_SECONDS,
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }


def with_pre_session(request: Request, response: Response, pre: str, name: str) -> Response:
    """The sign-in form's answer, setting the pre-session cookie ``pre`` when the browser does
    not hold it yet."""
    if request.cookies.get(name) != pre:
        response.set_cookie(name, pre, **_cookie_options(request))
    return response


def signed_in(request: Request, sealed: str, cookie: str, pre_cookie: str) -> Response:
    """To the page's start, the session cookie set and the pre-session one spent."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(pre_cookie, path="/", httponly=True, samesite="strict")
    response.set_cookie(cookie, sealed, **_cookie_options(request))
    return response


def signed_out(cookie: str) -> Response:
    """To the page's start, the session cookie removed."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(cookie, path="/", httponly=True, samesite="strict")
    return response
