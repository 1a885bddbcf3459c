"""From an ``Endpoint`` and the method's arguments to the runtime's one ``_request`` call."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, overload

import httpx
import pydantic

from pymedplum._async._base_client import AsyncBaseClient, ResultT
from pymedplum._endpoints import Endpoint
from pymedplum._fhir_rules import LOCATION_TAIL
from pymedplum._request_builders.conditional import VERSION_TAG
from pymedplum._request_builders.headers import check_headers
from pymedplum._request_builders.paths import fill_path
from pymedplum._request_builders.search import search_as_post
from pymedplum._serialization import decode_exact
from pymedplum.bundle import FHIRBundle, relocated, response_bundle, too_deep
from pymedplum.endpoint_types import ModelT
from pymedplum.exceptions import OperationOutcomeError


def _template(path: str, values: Mapping[str, str | None]) -> str:
    """The path template with unbound (None) segments dropped, for RequestEvent.path_template."""
    return "/".join(
        seg
        for seg in path.split("/")
        if seg and not (seg.startswith("{") and values.get(seg[1:-1]) is None)
    )


def _refuses_keys_twice(model: type[pydantic.BaseModel]) -> bool:
    """Whether ``model.model_validate_json`` refuses an object with a key twice: a FHIR model's
    does (pymedplum.fhir's read_json), pydantic's own does not. (The FHIR models' module is
    loaded once any of them is: not imported here, where a client of dicts never needs it.)"""
    base = sys.modules.get("pymedplum.fhir._base")
    return base is not None and issubclass(model, base.FHIRModel)


def _from_location(response: httpx.Response) -> dict[str, Any]:
    """``{"resourceType", "id", "meta": {"versionId"}}`` of the resource an empty write answer
    stands for: named by its ``Location`` header (``.../Patient/123/_history/1``), else, for an
    update or patch, by the request's own URL; the version from the ``ETag`` when the location
    has none. ``{}`` when nothing names a resource."""
    candidates = [response.headers.get("Location"), response.headers.get("Content-Location")]
    if response.request.method in ("PUT", "PATCH"):
        candidates.append(str(response.request.url.copy_with(query=None)))
    match = None
    for location in candidates:
        if not location:
            continue
        try:
            # A relative Location ("Patient/1/_history/2", RFC 9110 10.2.2) is relative to the
            # request's URL, as a browser would read it; the joined path ends with Type/id.
            match = LOCATION_TAIL.search(response.request.url.join(location).path)
        except httpx.InvalidURL:
            match = None
        if match is not None:
            break
    if match is None:
        return {}
    resource_type, resource_id, version = match.groups()
    if version is None:
        etag = VERSION_TAG.fullmatch(response.headers.get("ETag", ""))
        version = etag.group(1) if etag else None
    data: dict[str, Any] = {"resourceType": resource_type, "id": resource_id}
    if version is not None:
        data["meta"] = {"versionId": version}
    return data


_READ_METHODS = frozenset({"GET", "HEAD"})


def _may_lack_body(response: httpx.Response) -> bool:
    """Whether an answer may come without a body where an object is due: a 202 (accepted, still
    running: a Bulk Data export's status), or a 304 to the caller's own If-None-Match /
    If-Modified-Since (an unprompted 304 is no answer: it would read as an empty result)."""
    if response.status_code == 202:
        return True
    headers = response.request.headers
    return response.status_code == 304 and (
        "If-None-Match" in headers or "If-Modified-Since" in headers
    )


def _unchanged(response: httpx.Response) -> httpx.Response:
    """The ``convert`` of a call that wants the response itself: ``_call_endpoint`` always
    passes one, since its optional ``convert`` matches neither of ``_request``'s overloads."""
    return response


def _json_kind(value: object) -> str:
    """How a JSON value reads in an error message: ``null``, ``a list``, ``a string``, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


class Dispatch(AsyncBaseClient):
    """Sends endpoint requests and converts their responses; the base of every override mixin."""

    @overload
    async def _call_endpoint(
        self,
        endpoint: Endpoint,
        values: Mapping[str, str | None],
        *,
        url: str | None = None,
        method: str | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        on_behalf_of: str | None = None,
        replay_safe: bool | None = None,
        refine_error: Callable[[OperationOutcomeError], OperationOutcomeError] | None = None,
        precondition: Callable[[], Awaitable[None]] | None = None,  # async-only
        # sync-only: precondition: Callable[[], None] | None = None,
        convert: None = None,
    ) -> httpx.Response: ...

    @overload
    async def _call_endpoint(
        self,
        endpoint: Endpoint,
        values: Mapping[str, str | None],
        *,
        url: str | None = None,
        method: str | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        on_behalf_of: str | None = None,
        replay_safe: bool | None = None,
        refine_error: Callable[[OperationOutcomeError], OperationOutcomeError] | None = None,
        precondition: Callable[[], Awaitable[None]] | None = None,  # async-only
        # sync-only: precondition: Callable[[], None] | None = None,
        convert: Callable[[httpx.Response], ResultT],
    ) -> ResultT: ...

    async def _call_endpoint(
        self,
        endpoint: Endpoint,
        values: Mapping[str, str | None],
        *,
        url: str | None = None,
        method: str | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        on_behalf_of: str | None = None,
        replay_safe: bool | None = None,
        refine_error: Callable[[OperationOutcomeError], OperationOutcomeError] | None = None,
        precondition: Callable[[], Awaitable[None]] | None = None,  # async-only
        # sync-only: precondition: Callable[[], None] | None = None,
        convert: Callable[[httpx.Response], Any] | None = None,
    ) -> Any:
        """One request of ``endpoint``: its path filled from ``values`` (checked), or ``url``;
        the response, or what ``convert`` reads from it (inside the call, so that an answer it
        cannot use is the RequestEvent's outcome too).

        ``url`` is a server-handed absolute URL (a next link, a job URL); the runtime checks it
        is on the client's origin. Emits one RequestEvent with the endpoint's action.
        """
        headers = check_headers(headers)  # the caller's: dict() below would fail on a str
        if url is None:
            target = fill_path(endpoint.path, values, dict(endpoint.args), endpoint.optional)
            base = endpoint.base
        else:
            target, base = url, "absolute"
        method = method or endpoint.method
        template = _template(endpoint.path, values) or None
        if endpoint.action == "search" and method == "GET" and json is None and content is None:
            # A query too long for a URL goes as POST _search with a form body (same search).
            post = search_as_post(target, params)
            if post is not None:
                target, content = post
                method, params, replay_safe = "POST", None, True  # a search changes nothing
                headers = {**(headers or {}), "Content-Type": "application/x-www-form-urlencoded"}
                template = f"{template}/_search" if template else None
        return await self._request(
            method,
            target,
            base=base,
            params=list(params) if params else None,
            json=json,
            content=content,
            headers=dict(headers) if headers else None,
            action=endpoint.action,
            operation=endpoint.operation,
            resource_type=values.get("resourceType") or endpoint.resource_type,
            resource_id=values.get("id"),
            path_template=template,
            on_behalf_of=on_behalf_of,
            replay_safe=endpoint.replay_safe if replay_safe is None else replay_safe,
            refine_error=refine_error,
            precondition=precondition,
            convert=convert or _unchanged,
        )

    def _dict_response(
        self, response: httpx.Response, *, exact_decimals: bool = False
    ) -> dict[str, Any]:
        """The JSON object of a response; MedplumError for anything else, an empty body too
        unless the status allows one (202, a 304 the caller asked for: then ``{}``).

        ``exact_decimals``: numbers with a fraction or exponent become ``Decimal`` with their
        text (``72.50`` stays ``72.50``) — for resources about to be validated into models.
        """
        data = self._json(response) if not exact_decimals else self._exact_json(response)
        if isinstance(data, dict):
            return data
        if not response.content and _may_lack_body(response):
            return {}
        # An empty 200 (or JSON null) read as {} would be a search without results, a batch
        # without entries or a finished job: a proxy's or server's fault passed off as an answer.
        got = "an empty body" if not response.content else _json_kind(data)
        raise self._unreadable(response, f"expected a JSON object, got {got}")

    def _searchset(
        self, response: httpx.Response, *, exact_decimals: bool = False
    ) -> dict[str, Any]:
        """``_dict_response`` of a search page whose ``entry`` and ``link`` (when present) are
        lists of objects, as the paging reads them; MedplumError naming the field otherwise
        (iterating an int failed with a bare TypeError, a dict's keys yielded nothing)."""
        page = self._dict_response(response, exact_decimals=exact_decimals)
        for field in ("entry", "link"):
            items = page.get(field)
            if items is not None and not (
                isinstance(items, list) and all(isinstance(item, dict) for item in items)
            ):
                what = _json_kind(items) if not isinstance(items, list) else "a list of non-objects"
                raise self._unreadable(
                    response, f"expected the Bundle's {field} to be a list of objects, got {what}"
                )
        return page

    def _exact_json(self, response: httpx.Response) -> Any:
        """``_json`` with decimals kept as ``Decimal`` (their text intact)."""
        if not response.content:
            return None
        try:
            return decode_exact(response.content)
        except ValueError:
            return self._json(response)  # raises the usual "expected a JSON body" error

    @overload
    def _model_response(self, response: httpx.Response, as_fhir: None) -> dict[str, Any]: ...

    @overload
    def _model_response(self, response: httpx.Response, as_fhir: type[ModelT]) -> ModelT: ...

    def _model_response(
        self, response: httpx.Response, as_fhir: type[ModelT] | None
    ) -> dict[str, Any] | ModelT:
        """The response as ``as_fhir`` (validated straight from the bytes) or as a dict.

        An empty answer to a write (``Prefer: return=minimal``) becomes the resource type, id
        and version its ``Location`` header names, rather than ``{}`` or a parse error after the
        write was applied.
        """
        if not response.content:
            if response.request.method in _READ_METHODS and not _may_lack_body(response):
                # A read answered with nothing: no resource, not an empty one.
                raise self._unreadable(response, "expected a JSON object, got an empty body")
            data = _from_location(response)
            if as_fhir is None:
                return data
            if not data:
                if response.status_code == 304:  # the caller's own conditional header matched
                    why = (
                        "304 Not Modified (the If-None-Match or If-Modified-Since header sent "
                        "matched), which has no body"
                    )
                    hint = ""
                else:
                    why = "an empty body naming no resource"
                    hint = " (was Prefer: return=minimal sent?)"
                # Named like every unusable 2xx: which call, and that a write most likely was
                # applied (an empty 201 to a create is not a failed create to send again).
                raise self._unreadable(
                    response,
                    f"the server answered with {why}, so there is no {as_fhir.__name__} to "
                    f"return{hint}",
                )
            return as_fhir.model_validate(data)
        if as_fhir is None:
            return self._dict_response(response)
        if not _refuses_keys_twice(as_fhir):
            # A model of the caller's own reads the text with pydantic's parser, which keeps
            # the last of two values of a key: the body is read once more, by the SDK's reader
            # (MedplumError for a key twice, as without as_fhir). FHIR models need not: their
            # model_validate_json refuses it (json_invalid, below).
            self._json(response)
        try:
            return as_fhir.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid" or not first["loc"]:
                # Not JSON at all (a proxy's HTML page), or JSON that is no object (null, a
                # list): the same MedplumError, with the response, as without as_fhir; a
                # resource that does not fit the model stays pydantic's ValidationError.
                self._dict_response(response)
            # A stored resource that does not fit (Medplum accepts gender "banana"): the title
            # says which answer it was, and that a write was applied, so that it is not taken
            # for the caller's own invalid input and sent again.
            raise relocated(exc, f" (the server's answer, {self._answer_of(response)})") from None
        except RecursionError:
            where = f" (the server's answer, {self._answer_of(response)})"
            raise relocated(too_deep(as_fhir), where) from None

    def _bundle_response(
        self, response: httpx.Response, return_bundle: bool, as_fhir: type[ModelT] | None
    ) -> dict[str, Any] | FHIRBundle[Any]:
        """A searchset: the Bundle dict, or a FHIRBundle (typed by ``as_fhir``) on request."""
        if not return_bundle:
            return self._dict_response(response)
        data = self._searchset(response)
        try:
            if as_fhir is None:
                return FHIRBundle(data)
            # The models are validated from the body decoded a second time, decimals kept as
            # their text (when they are built): the bundle's dicts stay plain JSON values (a
            # Decimal in them would make json.dumps fail).
            return response_bundle(data, response.content, as_fhir)
        except pydantic.ValidationError:
            raise  # a resource that does not fit the model, as elsewhere
        except ValueError as exc:
            # FHIRBundle checks only the shape (models are validated when iterated), naming
            # its argument ("data.total ..."): here the server's answer is at fault, so a
            # MedplumError with the response, not the bare ValueError of a caller's FHIRBundle.
            problem = str(exc).removeprefix("data.")
            raise self._unreadable(response, f"expected a Bundle, but its {problem}") from None
