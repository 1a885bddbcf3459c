"""Transport rules: https unless loopback (or opted out), and same-origin follow-up URLs."""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import SplitResult, urlsplit

from pymedplum.exceptions import InsecureTransportError, UnsafeRedirectError

logger = logging.getLogger("pymedplum.security")

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a literal loopback address (127.0.0.0/8, ::1). Other names are not
    resolved: DNS is not something the SDK can trust at construction time."""
    host = host.lower().strip("[]")
    if host == "localhost":
        return True
    if ":" in host:
        # A zone id ("::1%25lo") belongs to IPv6 literals only: "127.0.0.1%00.evil.test" is a
        # DNS name, not the loopback address before its "%".
        host = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_and_port(netloc: str) -> tuple[str, str | None]:
    """The host of ``netloc`` (brackets kept) and its port as written (``None`` without one),
    userinfo dropped: read as text, since what ``urlsplit`` accepts varies by Python release."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]") + 1
        host, rest = hostport[:end], hostport[end:]
        return host, rest[1:] if rest.startswith(":") else None
    host, colon, port = hostport.rpartition(":")
    return (host, port) if colon else (hostport, None)


def split_url(url: str) -> SplitResult:
    """``urlsplit``, raising ``ValueError`` for a bracketed host that is not an IPv6 address
    (``https://[medplum.test]/``) on every Python: 3.11.4 and later check that themselves,
    3.10 reads the host as ``medplum.test``, which httpx then refuses with its own error.

    Also ``ValueError`` for what ``urlsplit`` would read differently from httpx, so that an
    origin check sees the URL that is sent: control characters (``urlsplit`` drops tabs and
    line breaks, httpx refuses them), surrounding whitespace (stripped by ``urlsplit``, a
    relative URL to httpx) and anything but ``:port`` after ``]`` (``[::1]evil.test``)."""
    if url != url.strip() or not url.isprintable():
        raise ValueError("URL has surrounding whitespace or control characters")
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    host, port = _host_and_port(parts.netloc)
    if host.startswith("["):
        if not host.endswith("]") or hostport != host + ("" if port is None else f":{port}"):
            raise ValueError(f"invalid IPv6 host in URL: {hostport!r}")
        try:
            ipaddress.IPv6Address(host[1:-1].split("%", 1)[0])
        except ValueError:
            raise ValueError(f"invalid IPv6 address in URL: {host!r}") from None
    return parts


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for error messages."""
    scheme, sep, rest = url.partition("//")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    if not sep or "@" not in rest[:end]:
        return url
    return f"{scheme}//***@{rest[:end].rpartition('@')[2]}{rest[end:]}"


def normalize_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """Validate ``base_url`` and return it with exactly one trailing slash.

    Raises ``InsecureTransportError`` for ``http://`` to a non-loopback host without
    ``allow_insecure_http=True`` (which logs a WARNING), ``TypeError`` when it is not a str,
    ``ValueError`` when it is not an absolute http(s) URL.
    """
    if not isinstance(allow_insecure_http, bool):
        raise TypeError(
            f"allow_insecure_http must be a bool, got {type(allow_insecure_http).__name__}"
        )
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a URL string, got {type(base_url).__name__}")
    if not base_url:
        raise ValueError("base_url must be a non-empty URL string, got ''")
    shown = without_userinfo(base_url)
    # urlsplit silently drops tabs and newlines, and (since 3.10.12 / 3.11.4) leading spaces:
    # refused here, so a stray character from an env file means the same on every Python.
    if any(ch.isspace() or not ch.isprintable() for ch in base_url):
        raise ValueError(
            f"base_url must not contain whitespace or control characters, got {shown!r}"
        )
    try:
        parts = split_url(base_url)
    except ValueError:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {shown!r}") from None
    # The port checked as text: older releases' urlsplit read "+443" and "4_43" as port 443.
    _, port = _host_and_port(parts.netloc)
    if port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise ValueError(f"base_url has an invalid port {port!r} (0-65535), got {shown!r}")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {shown!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not carry credentials (user:password@)")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not carry a query or fragment")
    insecure = scheme == "http" and not is_loopback_host(parts.hostname)
    if insecure and not allow_insecure_http:
        raise InsecureTransportError(
            f"base_url uses plain http:// for the non-loopback host {parts.hostname!r}; "
            "use https://, or pass allow_insecure_http=True (not for PHI)"
        )
    if allow_insecure_http:
        # "Logs a WARNING when enabled" (the contract): whenever it is, so that the opt-out is
        # never silent, even where this base_url does not need it.
        logger.warning(
            "allow_insecure_http=True: %s; do not use this for PHI",
            f"sending requests over plain http:// to {parts.hostname!r}"
            if insecure
            else "not needed for this base_url (https:// or a loopback host), remove it",
        )
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{scheme}://{parts.netloc.lower()}{path}"


def origin_of(url: str) -> Origin:
    """``(scheme, host, port)`` of an absolute URL, the default port filled in; an
    unparsable URL (``https://[not-an-ip]/``) is ``("", "", -1)``, which matches no origin."""
    try:
        parts = split_url(url)
    except ValueError:
        return "", "", -1
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = _DEFAULT_PORTS.get(scheme, -1)
    return scheme, (parts.hostname or "").lower(), port


def is_same_origin(expected: Origin, url: str) -> bool:
    """Whether ``url`` is absolute, has no userinfo and the exact scheme, host and port."""
    try:
        parts = split_url(url)
    except ValueError:  # malformed, e.g. a bracketed host that is not an IPv6 address
        return False
    if parts.username is not None or parts.password is not None:
        return False
    return origin_of(url) == expected


def check_same_origin(expected: Origin, url: str, *, what: str = "URL") -> str:
    """Return ``url`` when it is on ``expected``'s origin, else raise ``UnsafeRedirectError``.

    The message names the offending origin, never the path or query (they can hold PHI).
    """
    if not is_same_origin(expected, url):
        scheme, host, port = origin_of(url)
        if (scheme, host, port) == ("", "", -1):  # unparsable: no origin to name
            raise UnsafeRedirectError(f"{what} is not a valid absolute URL; refusing to follow it")
        if (scheme, host, port) == expected:  # the same origin, but with user:password@
            raise UnsafeRedirectError(
                f"{what} carries userinfo (user@ or user:password@); refusing to send credentials"
            )
        raise UnsafeRedirectError(
            f"{what} points at {scheme or '?'}://{host or '?'}:{port} which is not the client's "
            f"origin {expected[0]}://{expected[1]}:{expected[2]}; refusing to send credentials"
        )
    return url
