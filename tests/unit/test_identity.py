"""Who calls the HTTP API: tokens the local stack signs, and Google ID tokens Cloud Run verified."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from imagen.core import identity
from imagen.core.identity import Caller, Unauthenticated

KEY = "k" * 43
NOW = 1_800_000_000.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def google_token(**claims: Any) -> str:
    """As Cloud Run hands it on: header and claims, the signature already checked (and removed)."""
    part = [
        base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
        for p in ({"alg": "RS256"}, claims)
    ]
    return f"{part[0]}.{part[1]}.SIGNATURE_REMOVED_BY_GOOGLE"


def test_a_local_token_names_its_caller() -> None:
    token = identity.mint_local("Alice@Example.com", KEY, now=NOW)
    assert identity.caller(bearer(token), "local", (), KEY, now=NOW + 10) == Caller("alice@example.com")


def test_operators_are_named_by_email_in_any_case() -> None:
    token = identity.mint_local("ops@example.com", KEY, now=NOW)
    found = identity.caller(bearer(token), "local", (" OPS@example.com",), KEY, now=NOW)
    assert found.operator and found.may_read("anyone@example.com") and found.may_read("")


def test_a_caller_reads_only_its_own() -> None:
    alice = Caller("alice@example.com")
    assert alice.may_read("alice@example.com")
    assert not alice.may_read("bob@example.com") and not alice.may_read("")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({}, "send an identity token"),
        ({"Authorization": "Basic YTpi"}, "send an identity token"),
        ({"Authorization": "Bearer abc"}, "not a JWT"),
        ({"Authorization": "Bearer a.b.c"}, "cannot be decoded"),
        (
            bearer(identity.mint_local("a@example.com", "another key", now=NOW)),
            "does not match this stack's key",
        ),
        (bearer(identity.mint_local("a@example.com", KEY, ttl_s=60, now=NOW - 3600)), "expired"),
        (bearer(identity.mint_local("not-an-email", KEY, now=NOW)), "no verified email"),
        (
            bearer(google_token(iss="https://accounts.google.com", email="a@example.com", exp=NOW + 60)),
            "not signed",
        ),
    ],
)
def test_local_mode_refuses(header: dict[str, str], message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        identity.caller(header, "local", (), KEY, now=NOW)


def test_platform_mode_reads_the_verified_google_token() -> None:
    token = google_token(
        iss="https://accounts.google.com", email="svc@p.iam.gserviceaccount.com", exp=NOW + 60
    )
    assert identity.caller(bearer(token), "platform", (), now=NOW).email == "svc@p.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iss": "imagen-local", "email": "a@example.com", "exp": NOW + 60}, "issuer"),
        ({"iss": "https://evil.example", "email": "a@example.com", "exp": NOW + 60}, "issuer"),
        ({"iss": "accounts.google.com", "email": "a@example.com", "exp": NOW - 3600}, "expired"),
        ({"iss": "accounts.google.com", "email": "a@example.com"}, "expired"),
        ({"iss": "accounts.google.com", "sub": "123", "exp": NOW + 60}, "no verified email"),
        (
            {
                "iss": "accounts.google.com",
                "email": "a@example.com",
                "email_verified": False,
                "exp": NOW + 60,
            },
            "verified",
        ),
    ],
)
def test_platform_mode_refuses(claims: dict[str, Any], message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        identity.caller(bearer(google_token(**claims)), "platform", (), now=NOW)


def test_a_local_token_is_no_good_in_the_cloud() -> None:
    token = identity.mint_local("a@example.com", KEY, now=NOW)
    with pytest.raises(Unauthenticated, match="issuer"):
        identity.caller(bearer(token), "platform", (), now=NOW)


def test_in_the_cloud_the_token_cloud_run_verified_is_the_one_read() -> None:
    """With X-Serverless-Authorization, Cloud Run checks that header and passes Authorization on
    unchecked: a hand-made token there must not name the caller."""
    verified = google_token(iss="https://accounts.google.com", email="alice@example.com", exp=NOW + 60)
    forged = google_token(iss="https://accounts.google.com", email="ops@example.com", exp=NOW + 60)
    headers = {"X-Serverless-Authorization": f"Bearer {verified}", "Authorization": f"Bearer {forged}"}
    found = identity.caller(headers, "platform", ("ops@example.com",), now=NOW)
    assert found == Caller("alice@example.com")


def test_locally_only_authorization_counts() -> None:
    token = identity.mint_local("alice@example.com", KEY, now=NOW)
    with pytest.raises(Unauthenticated, match="send an identity token"):
        identity.caller({"X-Serverless-Authorization": f"Bearer {token}"}, "local", (), KEY, now=NOW)


def test_an_owner_in_any_script_is_compared_not_crashed_on() -> None:
    assert not Caller("alice@example.com").may_read("ålice@example.com")
    assert Caller("jösé@example.com").may_read("jösé@example.com")
