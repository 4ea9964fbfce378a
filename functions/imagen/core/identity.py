"""Who calls the HTTP API: the identity in the request's bearer token, and whether it operates.

Two ways to trust a token (API_AUTH):

- `platform` (deployed): the function admits only callers that hold `run.invoker` on it, so
  Cloud Run has verified the Google ID token (signature, audience, expiry) before the request
  reaches us; we read the claims of the token it verified and check the issuer, the expiry and a
  verified email. Cloud Run verifies `X-Serverless-Authorization` when a request carries it and
  then passes `Authorization` on unchecked, so that header, when present, is the one read.
- `local` (the local stack): no Google in front, so the token is an HS256 JWT signed with the
  stack's own key (API_LOCAL_KEY); `python -m emulators token EMAIL` mints one. Its signature is
  checked here.

A job created through the API belongs to the email that created it; operators (API_OPERATORS)
read every job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

PLATFORM = "platform"
LOCAL = "local"
MODES = (PLATFORM, LOCAL)
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
LOCAL_ISSUER = "imagen-local"
CLOCK_SKEW_S = 60


class Unauthenticated(Exception):
    """The request carries no identity we can trust (answered 401, with this message)."""


@dataclass(frozen=True)
class Caller:
    """The verified identity of one request."""

    email: str
    operator: bool = False

    def may_read(self, owner: str) -> bool:
        """Whether this caller may see a job owned by `owner` ("" for jobs not made by the API)."""
        return self.operator or (bool(owner) and hmac.compare_digest(owner.encode(), self.email.encode()))


VERIFIED_BY_CLOUD_RUN = "X-Serverless-Authorization"


def caller(
    headers: Mapping[str, str],
    mode: str,
    operators: Collection[str],
    local_key: str = "",
    now: float | None = None,
) -> Caller:
    """The caller named by the request's bearer token (the header the mode trusts), or
    Unauthenticated."""
    authorization = headers.get("Authorization", "")
    if mode == PLATFORM:
        authorization = headers.get(VERIFIED_BY_CLOUD_RUN) or authorization
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an identity token: Authorization: Bearer <token>")
    header, claims, signed, signature = _split(token.strip())
    if mode == LOCAL:
        if header.get("alg") != "HS256" or not local_key:
            raise Unauthenticated("the token is not signed by this stack's key")
        expected = _b64(hmac.new(local_key.encode(), signed, hashlib.sha256).digest())
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Unauthenticated("the token's signature does not match this stack's key")
        issuers: tuple[str, ...] = (LOCAL_ISSUER,)
    elif mode == PLATFORM:
        issuers = GOOGLE_ISSUERS  # signature and audience: checked by Cloud Run before us
    else:
        raise Unauthenticated(f"this API's identity mode {mode!r} is not one of {', '.join(MODES)}")
    at = time.time() if now is None else now
    if claims.get("iss") not in issuers:
        raise Unauthenticated("the token was not issued by an issuer this API trusts")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp + CLOCK_SKEW_S < at:
        raise Unauthenticated("the token has expired; ask for a new one")
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is False:
        raise Unauthenticated("the token names no verified email (mint it with an email claim)")
    email = email.lower()
    return Caller(email, email in {o.strip().lower() for o in operators})


def mint_local(email: str, key: str, ttl_s: int = 3600, now: float | None = None) -> str:
    """An HS256 token for the local stack's API, as `python -m emulators token` prints it."""
    at = int(time.time() if now is None else now)
    claims = {"iss": LOCAL_ISSUER, "email": email, "email_verified": True, "iat": at, "exp": at + ttl_s}
    header = {"alg": "HS256", "typ": "JWT"}
    signed = ".".join(_b64(json.dumps(part).encode()) for part in (header, claims))
    signature = hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest()
    return signed + "." + _b64(signature)


def _split(token: str) -> tuple[Mapping[str, Any], Mapping[str, Any], bytes, str]:
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("the token is not a JWT (three dot-separated parts)")
    try:
        header, claims = (json.loads(_unb64(p)) for p in parts[:2])
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Unauthenticated("the token cannot be decoded") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthenticated("the token cannot be decoded")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), parts[2]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
