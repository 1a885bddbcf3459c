"""A scripted Medplum stand-in for httpx.MockTransport-style tests, shared by both flavours.

``FakeMedplum`` answers the token endpoint itself (a fresh token per request) and serves
queued answers per ``(method, path)``; every request is recorded. ``AsyncFakeTransport`` /
``SyncFakeTransport`` wrap it for httpx.AsyncClient / httpx.Client and can delay an answer
(so concurrent callers really overlap).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx

Answer = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]

TOKEN_PATH = "/oauth2/token"


class FakeMedplum:
    def __init__(self, *, expires_in: float | None = 3600, token_delay: float = 0.0) -> None:
        self.requests: list[httpx.Request] = []
        self.token_requests: list[httpx.Request] = []
        self.issued: list[str] = []
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.token_answers: list[Answer] = []
        self.valid_tokens: set[str] | None = None  # None: accept any bearer
        self._routes: dict[tuple[str, str], list[Answer]] = {}
        self._lock = threading.Lock()

    # --- scripting ------------------------------------------------------------------------
    def queue(self, method: str, path: str, *answers: Answer) -> None:
        """Answers for ``method path`` in order; the last one repeats."""
        self._routes[(method, path)] = list(answers)

    def json(self, status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    # --- serving --------------------------------------------------------------------------
    def delay_for(self, request: httpx.Request) -> float:
        return self.token_delay if request.url.path == TOKEN_PATH else 0.0

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self._lock:
            if request.url.path == TOKEN_PATH:
                self.token_requests.append(request)
                return self._token_answer(request)
            self.requests.append(request)
            answers = self._routes.get((request.method, request.url.path))
            if answers is None:
                answers = self._routes.get(("*", "*"), [])
            answer: Answer | None = (
                answers.pop(0) if len(answers) > 1 else (answers[0] if answers else None)
            )
        if self.valid_tokens is not None:
            auth = request.headers.get("Authorization", "")
            if auth.removeprefix("Bearer ") not in self.valid_tokens:
                return httpx.Response(401, json=_outcome("login", "Unauthorized"))
        if answer is None:
            return httpx.Response(200, json={"resourceType": "Patient", "id": "123"})
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx.Response):
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        return answer(request)

    def _token_answer(self, request: httpx.Request) -> httpx.Response:
        if self.token_answers:
            answer = self.token_answers.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            if isinstance(answer, httpx.Response):
                return answer
            return answer(request)
        token = f"secret-token-{len(self.token_requests)}"
        self.issued.append(token)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)

    def sent_to(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


def _outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


def outcome(code: str, diagnostics: str = "Patient John Doe DOB 1970-01-01") -> dict[str, Any]:
    """An OperationOutcome whose diagnostics carry fake PHI (which must never leak)."""
    return _outcome(code, diagnostics)


class AsyncFakeTransport(httpx.AsyncBaseTransport):
    def __init__(self, fake: FakeMedplum) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        delay = self.fake.delay_for(request)
        if delay:
            await anyio.sleep(delay)
        else:
            await anyio.sleep(0)  # a real suspension point, like a socket would have
        return self.fake.handle(request)


class SyncFakeTransport(httpx.BaseTransport):
    def __init__(self, fake: FakeMedplum) -> None:
        self.fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        delay = self.fake.delay_for(request)
        if delay:
            time.sleep(delay)
        return self.fake.handle(request)
