"""Signed upload URLs for the HTTP API: V4, signed by the function's own service account.

On Google Cloud the function has no private key: the signature comes from the IAM Credentials
API (signBlob) for its service account, which Terraform lets it call on itself. Against the
storage emulator there is no IAM: a key made for this process signs, and the URL points at the
emulator (which does not check signatures).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

Signer = Callable[..., str]  # (blob, **generate_signed_url arguments) -> URL


def url_signer() -> Signer:
    """How this process signs upload URLs: with IAM in the cloud, with its own key locally."""
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        return functools.partial(_sign_locally, emulator.rstrip("/"))
    return _sign_with_iam


def _sign_with_iam(blob: Any, **kwargs: Any) -> str:
    import google.auth
    from google.auth.transport.requests import Request

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(Request())
    url: str = blob.generate_signed_url(
        service_account_email=getattr(credentials, "service_account_email", None),
        access_token=credentials.token,
        **kwargs,
    )
    return url


@functools.cache
def _local_credentials() -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "client_email": "imagen-api@local.invalid",
        "private_key": pem,
        "private_key_id": "local",
        "token_uri": "http://127.0.0.1/token",
    }
    return service_account.Credentials.from_service_account_info(info)


def _sign_locally(endpoint: str, blob: Any, **kwargs: Any) -> str:
    url: str = blob.generate_signed_url(
        credentials=_local_credentials(), api_access_endpoint=endpoint, **kwargs
    )
    return url
