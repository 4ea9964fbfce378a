"""Who may drive the console: this machine's browser tab, opened from the URL the console printed.

A page of another site, or a host name rebound to 127.0.0.1 (DNS rebinding), must not reach it:
- the Host header is 127.0.0.1:PORT or localhost:PORT, exactly;
- a state-changing request (POST, PUT, PATCH, DELETE) carries a same-origin Origin;
- every request carries the run's random token: in the printed URL once (answered with a
  redirect that sets it into an HttpOnly SameSite=Strict cookie, as Jupyter does), then in
  the cookie. Anything else is 403.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import logs

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_PARAM = "token"
# Every response: no framing, no sniffing, no referrer (the token may be in the URL), and only
# this origin's scripts, styles and images (previews arrive as blob: and data: URLs too).
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Verdict:
    """What the guard decided: let it through (and whether the token came in the URL), or refuse."""

    ok: bool
    reason: str = ""
    token_in_url: bool = False


@dataclass(frozen=True)
class Guard:
    """The checks for one run: its port and its token."""

    port: int
    token: str

    @property
    def cookie(self) -> str:
        """The cookie's name: one per port (cookies do not keep ports apart)."""
        return f"imagen_console_{self.port}"

    @property
    def hosts(self) -> tuple[str, ...]:
        return (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def url(self, path: str = "/") -> str:
        """The URL to open: the token rides in it once."""
        return f"http://127.0.0.1:{self.port}{path}?{TOKEN_PARAM}={self.token}"

    def _token_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), self.token.encode())

    def check(
        self,
        method: str,
        host: str | None,
        origin: str | None,
        url_token: str | None,
        cookie_token: str | None,
        fetch_site: str | None = None,
    ) -> Verdict:
        """The decision for one request, from its method and headers alone."""
        host = (host or "").lower()
        if host not in self.hosts:
            return Verdict(False, f"host {host or '(none)'!r} is not this console's")
        if method.upper() not in SAFE_METHODS:
            if origin != f"http://{host}":
                return Verdict(False, f"origin {origin or '(none)'!r} is not this console's")
            if fetch_site not in (None, "same-origin"):
                return Verdict(False, f"a {fetch_site} request may not change anything")
        if self._token_ok(cookie_token):
            return Verdict(True)
        if self._token_ok(url_token):
            return Verdict(True, token_in_url=True)
        return Verdict(False, "no token: open the URL that `imagen console` printed")

    def set_cookie(self, response: Response) -> None:
        response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict", path="/")


class GuardMiddleware:
    """The guard in front of every HTTP request; security headers on every response."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        cookies = _cookies(headers.get("cookie", ""))
        verdict = self.guard.check(
            scope["method"],
            headers.get("host"),
            headers.get("origin"),
            query.get(TOKEN_PARAM),
            cookies.get(self.guard.cookie),
            headers.get("sec-fetch-site") if scope["method"] not in SAFE_METHODS else None,
        )
        response: Response | None = None
        if not verdict.ok:
            logs.request_refused(scope["method"], scope["path"], verdict.reason)
            response = PlainTextResponse(f"forbidden: {verdict.reason}\n", status_code=403)
        elif verdict.token_in_url and scope["method"] == "GET":
            # The token leaves the address bar (and the history) for the cookie.
            rest = urlencode({k: v for k, v in query.items() if k != TOKEN_PARAM})
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            self.guard.set_cookie(response)
        if response is not None:
            response.headers.update(SECURITY_HEADERS)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    out.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out.setdefault(name, value)
    return out
