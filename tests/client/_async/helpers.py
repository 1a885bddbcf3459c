"""Client factory for the runtime tests (the sync twin builds a SyncBaseClient)."""

from __future__ import annotations

from typing import Any

import httpx

from pymedplum._async._base_client import AsyncBaseClient

from ..fake import AsyncFakeTransport, FakeMedplum

BASE = "https://medplum.test/"


def make_client(fake: FakeMedplum, **kwargs: Any) -> AsyncBaseClient:
    """A client on the fake server; client credentials unless the test overrides them."""
    options: dict[str, Any] = {"client_id": "cid", "client_secret": "csecret-value"}
    options.update(kwargs)
    http = httpx.AsyncClient(transport=AsyncFakeTransport(fake))
    return AsyncBaseClient(options.pop("base_url", BASE), http_client=http, **options)
