"""Safe on localhost: no token, a rebound host or a foreign origin is refused (403), and a page
of another site in the same browser cannot drive the console."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.console.conftest import EVIL, Running, wait_until

UNKNOWN_JOB = "0" * 32


def test_a_request_without_the_token_is_refused(console: Running) -> None:
    for path in ("/", "/jobs", "/api/meta", "/api/jobs", "/static/main.js", "/api/live"):
        status, _, body = console.request("GET", path)
        assert status == 403, path
        assert b"no token" in body
    status, _, _ = console.request("GET", "/api/meta", {"Cookie": f"{console.cookie}x"})
    assert status == 403


def test_the_printed_url_sets_a_strict_httponly_cookie(console: Running) -> None:
    status, headers, _ = console.request("GET", f"/jobs?token={console.token}&status=failed")
    assert status == 303
    assert headers["location"] == "/jobs?status=failed"  # the token leaves the address bar
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{console.cookie};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert headers["content-security-policy"].startswith("default-src 'self'")
    status, headers, _ = console.get("/api/meta")
    assert status == 200
    assert headers["x-frame-options"] == "DENY"


def test_a_rebound_host_is_refused(console: Running) -> None:
    """DNS rebinding: a name of the attacker's that resolves to 127.0.0.1 arrives as its Host."""
    for host in (f"evil.example:{console.port}", "127.0.0.1", f"127.0.0.1:{console.port + 1}"):
        status, _, body = console.request("GET", "/api/meta", {"Host": host, "Cookie": console.cookie})
        assert status == 403, host
        assert b"host" in body
    for host in (f"127.0.0.1:{console.port}", f"localhost:{console.port}"):
        assert console.request("GET", "/api/meta", {"Host": host, "Cookie": console.cookie})[0] == 200


def test_a_foreign_origin_cannot_change_anything(console: Running) -> None:
    path = f"/api/jobs/{UNKNOWN_JOB}/retry"
    for origin in ("http://evil.example", "null", f"http://localhost:{console.port}", None):
        headers = {"Cookie": console.cookie} | ({"Origin": origin} if origin else {})
        status, _, body = console.request("POST", path, headers)
        assert status == 403, origin
        assert b"origin" in body
    same = {"Cookie": console.cookie, "Origin": console.base}
    status, _, body = console.request("POST", path, same)
    assert status == 409  # through the guard: `imagen retry`'s own answer
    assert b"no job or object" in body


def test_a_rebinding_name_in_the_browser_is_refused(page: Any, console: Running) -> None:
    """The browser resolves evil.example to 127.0.0.1 (conftest's host rules), as a rebound DNS
    name would: the printed URL's token does not help such a page."""
    response = page.goto(f"http://{EVIL}:{console.port}/jobs?token={console.token}")
    assert response.status == 403
    assert "is not this console's" in page.content()


def test_a_page_of_another_site_cannot_drive_it(page: Any, console: Running) -> None:
    """The same browser, after the console's tab set its cookie: a page of another site posts to
    it (a no-cors fetch, as any site can) and reads from it. Both reach the console and are
    refused (no cookie crosses sites; a foreign Origin changes nothing)."""
    page.goto(f"{console.base}/jobs")
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        other = page.context.new_page()
        other.goto(f"http://{EVIL}:{attacker.server_address[1]}/")
        before = len(console.refusals())
        outcome = other.evaluate(
            """async ([base, job]) => {
                const post = {method: 'POST', mode: 'no-cors', credentials: 'include'};
                const tries = [
                    fetch(`${base}/api/jobs/${job}/retry`, post),
                    fetch(`${base}/api/meta`, {credentials: 'include'}),
                ];
                const settled = await Promise.allSettled(tries);
                return settled.map((r) => `${r.status} ${r.reason || r.value.type}`);
            }""",
            [console.base, UNKNOWN_JOB],
        )
        refused = wait_until(
            lambda: console.refusals()[before:] if len(console.refusals()) >= before + 2 else None, 10
        )
    finally:
        attacker.shutdown()
    assert any(f"/api/jobs/{UNKNOWN_JOB}/retry" in line for line in refused), refused
    assert any("/api/meta" in line for line in refused), refused
    # and the page gets no answer to read (CORS, and Cross-Origin-Resource-Policy: same-origin)
    assert all(o.startswith("rejected") for o in outcome), outcome


class _Attacker(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another site</title><p>nothing to see"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass
