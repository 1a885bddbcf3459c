"""Constructor rules: keyword-only, transport security, redirects, pool ownership, repr."""

from __future__ import annotations

import inspect
import logging

import httpx
import pytest

from pymedplum import AsyncMedplumClient, InsecureTransportError, RetryPolicy, UnsafeRedirectError
from pymedplum._async._base_client import AsyncBaseClient
from pymedplum._decoding import ACCEPT_ENCODING

from ..fake import AsyncFakeTransport, FakeMedplum
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only

CONTRACT_DEFAULTS = {
    "base_url": "https://api.medplum.com/",
    "client_id": None,
    "client_secret": None,
    "access_token": None,
    "project_id": None,
    "fhir_url_path": "fhir/R4/",
    "timeout": 30.0,
    "http_client": None,
    "before_request": None,
    "on_request_complete": None,
    "allow_insecure_http": False,
    "failed_refresh_cooldown": 1.0,
    "default_on_behalf_of": None,
}


def test_signature_matches_the_contract() -> None:
    params = inspect.signature(AsyncBaseClient.__init__).parameters
    names = [n for n in params if n != "self"]
    assert names[: len(CONTRACT_DEFAULTS)] == list(CONTRACT_DEFAULTS)
    for name, default in CONTRACT_DEFAULTS.items():
        assert params[name].default == default, name
    assert params["base_url"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for name in names[1:]:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    # The one addition to the contract is keyword-only with a default.
    assert names[len(CONTRACT_DEFAULTS) :] == ["retry"]
    assert params["retry"].default is None


def test_default_base_url_is_medplum_cloud() -> None:
    client = AsyncBaseClient()
    assert client.base_url == "https://api.medplum.com/"
    assert client.fhir_base_url == "https://api.medplum.com/fhir/R4/"


def test_second_positional_argument_is_rejected() -> None:
    with pytest.raises(TypeError):
        AsyncBaseClient("https://medplum.test/", "client-id")  # type: ignore[misc]


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(TypeError, match="max_retries"):
        AsyncBaseClient("https://medplum.test/", max_retries=3)  # type: ignore[call-arg]


def test_an_argument_error_names_the_class_called_and_suggests_a_keyword() -> None:
    # Python alone names AsyncBaseClient.__init__, which the caller never wrote.
    name = AsyncMedplumClient.__name__  # outside the strings, for unasync
    with pytest.raises(TypeError) as info:
        AsyncMedplumClient("https://x.test/", clientid="x")  # type: ignore[call-arg]
    assert str(info.value) == (
        name + "() got an unexpected keyword argument 'clientid'; did you mean 'client_id'?"
    )
    with pytest.raises(TypeError) as info:
        AsyncMedplumClient("https://x.test/", zzz=1)  # type: ignore[call-arg]
    assert str(info.value) == name + "() got an unexpected keyword argument 'zzz'"
    with pytest.raises(TypeError) as info:
        AsyncMedplumClient("https://x.test/", "cid", "secret")  # type: ignore[misc]
    assert str(info.value) == name + (
        "() takes at most 1 positional argument (base_url) but 3 were given; "
        "the others are keyword-only"
    )
    with pytest.raises(TypeError) as info:
        AsyncMedplumClient("https://x.test/", base_url="https://y.test/")  # type: ignore[misc]
    assert str(info.value) == name + "(): multiple values for argument 'base_url'"
    # A check inside the constructor keeps its own message.
    with pytest.raises(TypeError, match=r"^fhir_url_path must be a str, got int$"):
        AsyncMedplumClient("https://x.test/", fhir_url_path=3)  # type: ignore[arg-type]


def test_the_public_class_keeps_the_real_signature() -> None:
    params = inspect.signature(AsyncMedplumClient).parameters
    assert list(params)[: len(CONTRACT_DEFAULTS)] == list(CONTRACT_DEFAULTS)
    assert "self" not in params and "args" not in params and "kwargs" not in params


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(InsecureTransportError, match=r"example\.org"):
        AsyncBaseClient("http://example.org/")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8103/",
        "http://127.0.0.1:8103/",
        "http://127.8.9.10/",
        "http://[::1]:8103/",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    client = AsyncBaseClient(url)
    assert client.base_url.startswith("http://")


def test_a_name_resolving_to_loopback_is_not_trusted() -> None:
    with pytest.raises(InsecureTransportError):
        AsyncBaseClient("http://localhost.example.org/")


@pytest.mark.parametrize("url", ["https://medplum.test/", "http://127.0.0.1:8103/"])
def test_allow_insecure_http_logs_a_warning_where_not_needed_too(
    caplog: pytest.LogCaptureFixture, url: str
) -> None:
    # The contract: "Logs a WARNING when enabled".
    with caplog.at_level(logging.WARNING, logger="pymedplum"):
        AsyncBaseClient(url, allow_insecure_http=True)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not needed" in warnings[0].getMessage()


def test_no_warning_without_allow_insecure_http(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pymedplum"):
        AsyncBaseClient("http://127.0.0.1:8103/")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_allow_insecure_http_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pymedplum"):
        client = AsyncBaseClient("http://medplum.internal/", allow_insecure_http=True)
    assert client.base_url == "http://medplum.internal/"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "allow_insecure_http" in warnings[0].getMessage()


def test_base_url_gets_one_trailing_slash_and_fhir_path_is_joined() -> None:
    client = AsyncBaseClient("https://medplum.test/base", fhir_url_path="/fhir/R4")
    assert client.base_url == "https://medplum.test/base/"
    assert client.fhir_base_url == "https://medplum.test/base/fhir/R4/"


@pytest.mark.parametrize(
    ("url", "fhir_url_path"),
    [
        ("https://api.medplum.com/fhir/R4/", "fhir/R4/"),
        ("https://api.medplum.com/fhir/R4", "fhir/R4/"),
        ("https://medplum.test/base/fhir/R4/", "/fhir/R4"),
        ("https://medplum.test/api/fhir/", "fhir"),
    ],
)
def test_a_fhir_base_given_as_base_url_is_a_value_error(url: str, fhir_url_path: str) -> None:
    # The common mistake of passing the FHIR base: name base_url and what to pass instead.
    with pytest.raises(ValueError, match=r"base_url .* ends with the FHIR path .*server root"):
        AsyncBaseClient(url, fhir_url_path=fhir_url_path)


@pytest.mark.parametrize(
    ("url", "fhir_url_path"),
    [("https://medplum.test/fhir/R4/", "fhir/R5/"), ("https://medplum.test/fhir/R4/", "")],
)
def test_a_base_url_ending_in_another_path_is_accepted(url: str, fhir_url_path: str) -> None:
    client = AsyncBaseClient(url, fhir_url_path=fhir_url_path)
    assert client.fhir_base_url == url + (fhir_url_path.strip("/") + "/" if fhir_url_path else "")


@pytest.mark.parametrize(
    "path", ["fhir/R4?x=1", "fhir/R4#", "fhir\nR4/", "fhir/R4\\", "https://evil.example/fhir/"]
)
def test_a_fhir_url_path_that_is_not_a_plain_path_is_a_value_error(path: str) -> None:
    # Accepted before: a query or fragment swallowed every FHIR path after it (requests went
    # to .../fhir/R4?x=1/Patient/1), a line break failed each call with httpx's InvalidURL.
    with pytest.raises(ValueError, match="fhir_url_path must be a path under base_url"):
        AsyncBaseClient("https://medplum.test/", fhir_url_path=path)


@pytest.mark.parametrize("url", [None, 5, b"https://api.medplum.com/"])
def test_a_base_url_that_is_not_a_str_is_a_type_error(url: object) -> None:
    with pytest.raises(TypeError, match=r"^base_url must be a URL string, got "):
        AsyncBaseClient(url)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["ftp://medplum.test/", "medplum.test", ""])
def test_malformed_base_url_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        AsyncBaseClient(url)


@pytest.mark.parametrize(
    "url",
    [
        " https://medplum.test/",
        "https://medplum.test/\n",
        "https://medplum.test/\t",
        "https://medplum.test/a b/",
    ],
)
def test_a_base_url_with_whitespace_is_a_value_error_on_every_python(url: str) -> None:
    # urlsplit drops some of these silently, which ones depends on the Python release.
    with pytest.raises(ValueError, match=r"^base_url must not contain whitespace"):
        AsyncBaseClient(url)


@pytest.mark.parametrize("port", ["65536", "+443", "4_43", "abc", "\u0664\u0664\u0663"])
def test_a_base_url_with_an_invalid_port_is_a_value_error(port: str) -> None:
    # Was accepted (or an httpx.InvalidURL naming no argument); the first call then failed.
    with pytest.raises(ValueError, match=r"^base_url has an invalid port"):
        AsyncBaseClient(f"https://medplum.test:{port}/")


def test_http_client_that_follows_redirects_is_rejected(fake: FakeMedplum) -> None:
    http = httpx.AsyncClient(transport=AsyncFakeTransport(fake), follow_redirects=True)
    with pytest.raises(ValueError, match="follow_redirects=False"):
        AsyncBaseClient("https://medplum.test/", http_client=http)


def test_http_client_of_the_wrong_kind_is_rejected() -> None:
    with pytest.raises(TypeError, match="http_client") as info:
        AsyncBaseClient("https://medplum.test/", http_client=object())  # type: ignore[arg-type]
    # The sync twin asks for an httpx.Client: the message names this flavour's class.
    expected = httpx.AsyncClient.__name__  # outside the f-string, for unasync
    assert f"must be an httpx.{expected}, got object" in str(info.value)


async def test_a_closed_client_refuses_to_send(fake: FakeMedplum) -> None:
    client = make_client(fake)  # with a caller-supplied pool, which close() leaves open
    await client.get("me")
    await client.aclose()
    assert not client._http.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.get("me")
    assert len(fake.requests) == 1
    await client._http.aclose()


def test_a_caller_pool_may_not_carry_on_behalf_of_or_host(fake: FakeMedplum) -> None:
    for header in ("X-Medplum-On-Behalf-Of", "Host"):
        http = httpx.AsyncClient(
            transport=AsyncFakeTransport(fake), headers={header: "ProjectMembership/pm-1"}
        )
        with pytest.raises(ValueError, match="http_client's default headers must not set"):
            AsyncBaseClient("https://medplum.test/", http_client=http)


async def test_the_sdk_never_follows_a_redirect(fake: FakeMedplum) -> None:
    fake.queue(
        "GET",
        "/fhir/R4/Patient/123",
        httpx.Response(302, headers={"Location": "https://evil.test/steal"}),
    )
    client = make_client(fake)
    with pytest.raises(UnsafeRedirectError) as info:
        await client._request("GET", "Patient/123")
    await client.aclose()
    assert info.value.status_code == 302
    assert [r.url.host for r in fake.requests] == ["medplum.test"]


def test_its_own_pool_identifies_the_sdk() -> None:
    client = AsyncBaseClient("https://medplum.test/")
    assert client._http.headers["User-Agent"].startswith("pymedplum/")
    assert client._http.follow_redirects is False


def test_its_own_pool_asks_for_gzip_and_deflate_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Medplum's server prefers br when it is accepted (httpx accepts it with brotli installed),
    # and a bounded br decode is 7x slower than gzip's (pymedplum/_decoding.py). httpx's own
    # default as it is with brotli installed (where it would ask for br), whatever is here.
    monkeypatch.setattr(httpx._client, "ACCEPT_ENCODING", "gzip, deflate, br, zstd")
    client = AsyncBaseClient("https://medplum.test/")
    sent = client._http.build_request("GET", "https://medplum.test/x").headers["Accept-Encoding"]
    assert sent == ACCEPT_ENCODING == client._client_headers["accept-encoding"]
    assert sent == "gzip, deflate"
    # A caller's own pool keeps its own.
    own = AsyncBaseClient("https://medplum.test/", http_client=httpx.AsyncClient())
    assert own._http.headers["Accept-Encoding"] == "gzip, deflate, br, zstd"


async def test_context_manager_closes_its_own_pool() -> None:
    client = AsyncBaseClient("https://medplum.test/")
    async with client:
        pass
    assert client._http.is_closed


async def test_context_manager_leaves_a_caller_supplied_pool_open(fake: FakeMedplum) -> None:
    http = httpx.AsyncClient(transport=AsyncFakeTransport(fake))
    async with AsyncBaseClient("https://medplum.test/", http_client=http) as client:
        await client.get("me")
    assert not http.is_closed
    await http.aclose()


def test_repr_shows_no_secret() -> None:
    client = AsyncBaseClient("https://medplum.test/", client_id="cid", client_secret="s3cr3t-value")
    static = AsyncBaseClient("https://medplum.test/", access_token="tok-abcdef")
    assert "s3cr3t" not in repr(client) and "cid" in repr(client)
    assert "tok-abcdef" not in repr(static) and "access_token" in repr(static)


def test_client_id_without_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="client_secret"):
        AsyncBaseClient("https://medplum.test/", client_id="cid")


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("timeout", 0, ValueError),
        ("timeout", "30", TypeError),  # a wrong type is a TypeError, as for a per-call timeout
        ("failed_refresh_cooldown", None, TypeError),
        ("client_id", 123, TypeError),
        ("access_token", b"tok", TypeError),
        ("access_token", "", ValueError),
        ("failed_refresh_cooldown", -1, ValueError),
        ("timeout", float("nan"), ValueError),
        ("timeout", float("inf"), ValueError),
        ("failed_refresh_cooldown", float("nan"), ValueError),
        ("allow_insecure_http", "no", TypeError),
        ("retry", RetryPolicy, TypeError),
        ("before_request", "not callable", TypeError),
        ("on_request_complete", 42, TypeError),
        ("retry", {"max_attempts": 2}, TypeError),
    ],
)
def test_bad_options_name_the_argument(option: str, value: object, error: type) -> None:
    with pytest.raises(error, match=f"^{option} "):
        AsyncBaseClient("https://medplum.test/", **{option: value})


@pytest.mark.parametrize("value", ["30", True, [1]])
async def test_a_timeout_of_the_wrong_type_is_a_type_error_everywhere(value: object) -> None:
    # One checker, one message, for the constructor's and a per-call timeout.
    pattern = rf"^timeout must be a finite number of seconds > 0.*, got {type(value).__name__}$"
    with pytest.raises(TypeError, match=pattern):
        AsyncBaseClient("https://medplum.test/", timeout=value)  # type: ignore[arg-type]
    client = AsyncBaseClient("https://medplum.test/", access_token="t")
    with pytest.raises(TypeError, match=pattern):
        await client.get("Patient", timeout=value)  # type: ignore[arg-type]


def test_an_httpx_timeout_in_the_constructor_says_where_it_goes() -> None:
    # pymedplum 0.6 took timeout=httpx.Timeout(...) here; the contract's constructor a float.
    with pytest.raises(TypeError, match=r"^timeout .* got Timeout; .*http_client=httpx\.\w*Client"):
        AsyncBaseClient("https://medplum.test/", timeout=httpx.Timeout(5.0))  # type: ignore[arg-type]


def test_retry_policy_is_kept() -> None:
    policy = RetryPolicy(max_attempts=1)
    assert AsyncBaseClient(retry=policy).retry_policy is policy
    assert AsyncBaseClient().retry_policy == RetryPolicy()


async def test_a_caller_client_with_event_hooks_goes_through_httpx_send(fake: FakeMedplum) -> None:
    seen: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        seen.append(request.url.path)

    http = httpx.AsyncClient(
        transport=AsyncFakeTransport(fake), event_hooks={"request": [on_request]}
    )
    client = AsyncBaseClient("https://medplum.test/", access_token="t", http_client=http)
    await client._request("GET", "Patient/123")
    assert seen == ["/fhir/R4/Patient/123"]
    assert not client._direct and make_client(fake)._direct


@pytest.mark.parametrize(
    "options",
    [{"headers": {"X-App": "a"}}, {"params": {"tenant": "t"}}, {"cookies": {"sid": "c"}}],
)
async def test_a_caller_clients_defaults_are_sent(
    fake: FakeMedplum, options: dict[str, dict[str, str]]
) -> None:
    http = httpx.AsyncClient(transport=AsyncFakeTransport(fake), **options)  # type: ignore[arg-type]
    client = AsyncBaseClient("https://medplum.test/", access_token="t", http_client=http)
    await client._request("GET", "Patient/123", params={"a": "1"})
    sent = fake.requests[0]
    assert sent.url.params["a"] == "1"
    assert sent.headers["Authorization"] == "Bearer t"
    if "headers" in options:
        assert sent.headers["X-App"] == "a"
    if "params" in options:
        assert sent.url.params["tenant"] == "t"
    if "cookies" in options:
        assert sent.headers["Cookie"] == "sid=c"
