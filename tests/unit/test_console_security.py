"""The console's guard: Host, Origin and token checks, and the middleware's answers (no server:
the ASGI app called with a request's scope)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message

from imagen_cli.console.security import SECURITY_HEADERS, Guard, GuardMiddleware

PORT = 8765
TOKEN = "s3cret-token"
GUARD = Guard(PORT, TOKEN)
HOST = f"127.0.0.1:{PORT}"
SAME = f"http://{HOST}"


@pytest.mark.parametrize(
    ("method", "host", "origin", "url_token", "cookie", "ok", "in_url"),
    [
        ("GET", HOST, None, None, TOKEN, True, False),
        ("GET", f"localhost:{PORT}", None, None, TOKEN, True, False),
        ("GET", "LOCALHOST:8765", None, None, TOKEN, True, False),
        ("GET", HOST, None, TOKEN, None, True, True),
        ("GET", HOST, None, None, None, False, False),  # no token
        ("GET", HOST, None, "wrong", "wrong", False, False),
        ("GET", HOST, None, TOKEN[:-1], None, False, False),
        ("GET", "evil.example:8765", None, TOKEN, TOKEN, False, False),  # DNS rebinding
        ("GET", "127.0.0.1", None, None, TOKEN, False, False),  # no port: not this console
        ("GET", "127.0.0.1:8766", None, None, TOKEN, False, False),
        ("GET", None, None, None, TOKEN, False, False),
        ("POST", HOST, SAME, None, TOKEN, True, False),
        ("POST", HOST, None, None, TOKEN, False, False),  # a state change needs its Origin
        ("POST", HOST, "http://evil.example", None, TOKEN, False, False),
        ("POST", HOST, "null", None, TOKEN, False, False),
        ("POST", HOST, f"http://localhost:{PORT}", None, TOKEN, False, False),  # another site
        ("DELETE", HOST, "https://127.0.0.1:8765", None, TOKEN, False, False),
        ("POST", HOST, SAME, None, None, False, False),  # same origin, no token
    ],
)
def test_check(
    method: str,
    host: str | None,
    origin: str | None,
    url_token: str | None,
    cookie: str | None,
    ok: bool,
    in_url: bool,
) -> None:
    verdict = GUARD.check(method, host, origin, url_token, cookie)
    assert (verdict.ok, verdict.token_in_url) == (ok, in_url), verdict.reason
    assert verdict.ok or verdict.reason


def test_a_cross_site_fetch_cannot_change_anything() -> None:
    assert not GUARD.check("POST", HOST, SAME, None, TOKEN, fetch_site="cross-site").ok
    assert GUARD.check("POST", HOST, SAME, None, TOKEN, fetch_site="same-origin").ok


def test_url_and_cookie_name() -> None:
    assert GUARD.url() == f"http://127.0.0.1:{PORT}/?token={TOKEN}"
    assert GUARD.cookie == f"imagen_console_{PORT}"  # one per port: cookies do not keep ports apart


def _call(method: str, path: str, query: str = "", **headers: str) -> tuple[int, dict[str, str], bool]:
    """The middleware's answer (status, headers) and whether the app behind it ran."""
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(GuardMiddleware(app, GUARD)(scope, receive, send))
    start = sent[0]
    out = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], out, bool(reached)


def test_the_middleware_refuses_before_the_app() -> None:
    status, headers, reached = _call("GET", "/api/jobs", host=HOST)
    assert (status, reached) == (403, False)
    assert headers["x-frame-options"] == "DENY"
    status, _, reached = _call("POST", "/api/jobs/x/retry", host=HOST, cookie=f"{GUARD.cookie}={TOKEN}")
    assert (status, reached) == (403, False)


def test_the_token_in_the_url_becomes_a_cookie() -> None:
    status, headers, reached = _call("GET", "/jobs", f"token={TOKEN}&model=upscale", host=HOST)
    assert (status, reached) == (303, False)
    assert headers["location"] == "/jobs?model=upscale"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{GUARD.cookie}={TOKEN};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()


def test_a_request_with_the_cookie_reaches_the_app_with_the_headers() -> None:
    status, headers, reached = _call("GET", "/api/meta", host=HOST, cookie=f"other=1; {GUARD.cookie}={TOKEN}")
    assert (status, reached) == (200, True)
    for key in SECURITY_HEADERS:
        assert key.lower() in headers
