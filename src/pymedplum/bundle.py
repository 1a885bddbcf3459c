"""FHIRBundle: a read-only view of a Bundle (search results, batch/transaction responses)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from pymedplum._fhir_rules import LOCATION_TAIL
from pymedplum._serialization import as_fhir_dict, decode_exact
from pymedplum.exceptions import BundleEntryError  # defined with the other exceptions

__all__ = ["BundleEntryError", "BundleEntryResult", "FHIRBundle"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_STATUS = re.compile(r"\s*(\d{3})\b")


@dataclass(frozen=True)
class BundleEntryResult:
    """The outcome of one entry of a batch/transaction response.

    Attributes:
        index: position in ``Bundle.entry``.
        status_code: parsed from ``entry.response.status`` (``"201 Created"`` → 201);
            ``None`` when absent or unparseable.
        ok: ``True`` only for a 2xx status (an entry without a response is not ok).
        resource_id: id of the ``Type/id`` that ``entry.response.location`` ends with
            (``/_history/<v>`` removed), else ``entry.resource.id``; ``None`` when neither
            is present.
        resource: ``entry.resource`` when the server returned one.
        outcome: ``entry.response.outcome`` (an OperationOutcome), usually on failures.
        location: ``entry.response.location`` as sent.
        etag: ``entry.response.etag`` as sent (e.g. ``W/"2"``).
    """

    index: int
    status_code: int | None
    ok: bool
    resource_id: str | None
    resource: dict[str, Any] | None
    outcome: dict[str, Any] | None
    location: str | None = None
    etag: str | None = None


def _parse_status(status: object) -> int | None:
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    if isinstance(status, str):
        match = _STATUS.match(status)
        return int(match.group(1)) if match else None
    return None


def _id_from_location(location: str) -> str | None:
    # "Patient/123/_history/1", "https://host/fhir/R4/Patient/123", "Patient/123?x=y"
    match = LOCATION_TAIL.search(location.split("?", 1)[0])
    return match.group(2) if match else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@cache
def model_resource_type(model: type[BaseModel]) -> str | None:
    """The fixed ``resourceType`` a model declares (its field default), else ``None``."""
    for name, field in model.model_fields.items():
        if name in ("resourceType", "resource_type") or field.alias == "resourceType":
            return field.default if isinstance(field.default, str) else None
    return None


def describe_non_model_class(value: object) -> str:
    """What was passed where a model class was expected, for an error message: a model
    instance by its class only (its repr would put the resource, PHI included, in the log)."""
    if isinstance(value, BaseModel):
        name = type(value).__name__
        return f"a {name} instance; pass the class itself ({name}), not a resource"
    if isinstance(value, type | str) or value is None:
        return repr(value)
    return type(value).__name__


def _check_model(model: object, argument: str) -> type[BaseModel]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(
            f"{argument} must be a pydantic model class, got {describe_non_model_class(model)}"
        )
    return model


def validate_entry(model: type[M], resource: Any, index: int, where: str = "") -> M:
    """``model.model_validate(resource)``, with errors located in the Bundle.

    A search page of 100 entries with one that does not fit would otherwise report only the
    element (``gender``); the location now starts with ``entry.<index>.resource``. ``where``
    (e.g. `` (page 3 of the search)``) is appended to the error's title.
    """
    try:
        return model.model_validate(resource)
    except ValidationError as exc:
        raise relocated(exc, where, ("entry", index, "resource")) from None
    except RecursionError:
        raise relocated(too_deep(model), where, ("entry", index, "resource")) from None


def too_deep(model: type[BaseModel]) -> ValidationError:
    """The ``ValidationError`` for data nested past Python's recursion limit: the models walk
    unknown elements recursively, so a resource some hundreds of levels deep (which the JSON
    decoder still reads) raised a bare ``RecursionError`` from inside pydantic."""
    return ValidationError.from_exception_data(
        model.__name__,
        [
            {
                "type": PydanticCustomError(
                    "too_deep", "Input is nested too deeply to be validated"
                ),
                "loc": (),
                "input": None,
            }
        ],
        hide_input=True,
    )


def relocated(
    exc: ValidationError, where: str, prefix: tuple[str | int, ...] = ()
) -> ValidationError:
    """``exc`` with ``where`` appended to its title and ``prefix`` put before each error's
    location: the same errors (type, message, input), told where the data came from."""
    return ValidationError.from_exception_data(
        exc.title + where,
        [
            {
                # The same type string and message (a custom error keeps both as they were).
                "type": PydanticCustomError(error["type"], error["msg"]),
                "loc": (*prefix, *error["loc"]),
                "input": error["input"],
            }
            for error in exc.errors(include_url=False)
        ],
        hide_input=True,  # as the models do: server data is PHI
    )


class FHIRBundle(Generic[T]):
    """A Bundle with helpers for its entries, paging links and batch results.

    Iterating yields each entry's ``resource``. Built with ``as_fhir=Model`` (as the
    client does for ``search_resources(..., return_bundle=True, as_fhir=Patient)``),
    iteration yields a validated ``Model`` for each resource whose ``resourceType``
    matches the model's and the plain dict for any other (``_include``-d resources,
    OperationOutcome entries). :meth:`get_resources` always returns dicts.

    Example:
        >>> bundle = FHIRBundle({"resourceType": "Bundle", "type": "searchset",
        ...                      "entry": [{"resource": {"resourceType": "Patient", "id": "1"}}]})
        >>> [r["id"] for r in bundle], len(bundle), bundle.total
        (['1'], 1, 1)
    """

    @overload
    def __init__(
        self: FHIRBundle[dict[str, Any]],
        data: dict[str, Any] | BaseModel,
        *,
        as_fhir: None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: FHIRBundle[M], data: dict[str, Any] | BaseModel, *, as_fhir: type[M]
    ) -> None: ...

    def __init__(
        self, data: dict[str, Any] | BaseModel, *, as_fhir: type[BaseModel] | None = None
    ) -> None:
        """Wrap ``data`` (a Bundle dict, kept as is, or a Bundle model, dumped to FHIR JSON).

        Raises:
            TypeError: ``data`` is not a dict or model, or ``as_fhir`` is not a model class.
            ValueError: ``data`` is not a Bundle, or its ``entry``/``link``/``total`` are malformed
                (the message names the offending path, e.g. ``data.entry[2].resource``).
        """
        exact: dict[str, Any] | None = None
        if isinstance(data, BaseModel):
            # Imported here: only a model needs the models' runtime, which importing this
            # module (done by every client) does not load.
            from pymedplum.fhir._base import FHIRModel
            from pymedplum.fhir._decimals import plain_json

            if isinstance(data, FHIRModel):
                # A python-mode dump keeps each decimal a Decimal with its text, for the
                # models; the dicts get plain numbers (1.50 is 1.5), as to_fhir_json gives.
                exact = data.model_dump(by_alias=True, exclude_none=True)
        bundle = as_fhir_dict(data, "data") if exact is None else plain_json(exact)
        if bundle.get("resourceType") != "Bundle":
            raise ValueError(
                f"data.resourceType must be 'Bundle', got {bundle.get('resourceType')!r}"
            )
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            raise ValueError("data.entry must be a list")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ValueError(f"data.entry[{i}] must be an object")
            if not isinstance(entry.get("resource", {}), dict):
                raise ValueError(f"data.entry[{i}].resource must be an object")
        links = bundle.get("link", [])
        if not isinstance(links, list) or not all(isinstance(x, dict) for x in links):
            raise ValueError("data.link must be a list of objects")
        total = bundle.get("total")
        if total is not None and (
            isinstance(total, bool) or not isinstance(total, int) or total < 0
        ):
            # Not passed over: get_total() would count the page's entries in its place.
            got = total if isinstance(total, int) else type(total).__name__
            raise ValueError(f"data.total must be a non-negative int, got {got}")
        self._data = bundle
        self._entries: list[dict[str, Any]] = entries
        self._model = None if as_fhir is None else _check_model(as_fhir, "as_fhir")
        self._items: list[T | dict[str, Any]] | None = None
        # The entries models are validated from, when they differ from the dicts handed out:
        # a Bundle model's own decimals, or a search answer's (see response_bundle).
        self._model_entries: list[dict[str, Any]] = (
            entries if exact is None else exact.get("entry", [])
        )
        # A search answer's body, decoded (decimals exact) when models are built from it,
        # rather than kept decoded beside the dicts: that held the page twice (see
        # response_bundle).
        self._exact_body: bytes | None = None

    def __repr__(self) -> str:
        # Shape only: a repr must not leak resource contents (PHI) into logs.
        return (
            f"FHIRBundle(type={self._data.get('type')!r}, resources={len(self)}, "
            f"total={self.total!r})"
        )

    # --- resources ------------------------------------------------------------------

    def get_resources(
        self, resource_type: str | None = None, *, max_resources: int | None = None
    ) -> list[dict[str, Any]]:
        """Entry resources (dicts) in order, optionally only those of ``resource_type``.

        Entries without a ``resource`` (bare batch-response entries) are not resources
        and are skipped; use :meth:`entry_results` for those.

        Raises:
            ValueError: more than ``max_resources`` resources match (a guard against
                unexpectedly large pages).
        """
        resources = [
            r
            for _, r in self._indexed_resources()
            if resource_type is None or r.get("resourceType") == resource_type
        ]
        if max_resources is not None and len(resources) > max_resources:
            raise ValueError(
                f"bundle holds {len(resources)} resources, more than max_resources={max_resources}"
            )
        return resources

    def get_resources_typed(self, model_class: type[M]) -> list[M]:
        """Entry resources validated into ``model_class``.

        When the model declares a fixed ``resourceType`` (FHIR resource models do), only
        resources of that type are included; otherwise every resource is validated.

        Raises:
            TypeError: ``model_class`` is not a pydantic model class.
            pydantic.ValidationError: a matching resource does not fit the model.
        """
        model = _check_model(model_class, "model_class")
        wanted = model_resource_type(model)
        inputs = self._model_inputs()
        return [
            validate_entry(model_class, inputs[index]["resource"], index)
            for index, r in self._indexed_resources()
            if wanted is None or r.get("resourceType") == wanted
        ]

    def _indexed_resources(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(entry index, resource)`` of each entry that carries a resource (the index locates
        validation errors: ``entry.3.resource.gender``)."""
        for index, entry in enumerate(self._entries):
            if "resource" in entry:
                yield index, entry["resource"]

    def _model_inputs(self) -> list[dict[str, Any]]:
        """The entries models are validated from (their resources line up with the dicts')."""
        if self._exact_body is None:
            return self._model_entries
        # The bytes the dicts were decoded from: the same Bundle, already checked.
        entries: list[dict[str, Any]] = decode_exact(self._exact_body).get("entry", [])
        return entries

    def _typed_items(self) -> list[T | dict[str, Any]]:
        if self._items is None:
            if self._model is None:
                items: list[Any] = self.get_resources()
            else:
                wanted = model_resource_type(self._model)
                model = self._model
                inputs = self._model_inputs()
                items = [
                    validate_entry(model, inputs[index]["resource"], index)
                    if wanted is None or r.get("resourceType") == wanted
                    else r
                    for index, r in self._indexed_resources()
                ]
            self._items = items
        return self._items

    def __iter__(self) -> Iterator[T | dict[str, Any]]:
        """Each entry's resource: a model when built with ``as_fhir`` and the type matches.

        Typed as ``Model | dict``: resources of other types (``_include``) stay dicts, so
        narrow with ``isinstance`` when the search can return more than one type.
        """
        return iter(self._typed_items())

    def __len__(self) -> int:
        """The number of entries that carry a resource."""
        return sum(1 for e in self._entries if "resource" in e)

    def __bool__(self) -> bool:
        """True when at least one entry carries a resource."""
        return len(self) > 0

    def is_empty(self) -> bool:
        """True when no entry carries a resource."""
        return not self

    # --- bundle-level fields --------------------------------------------------------

    @property
    def raw(self) -> dict[str, Any]:
        """The underlying Bundle dict (the same object that was passed in)."""
        return self._data

    @property
    def link(self) -> list[dict[str, Any]]:
        """``Bundle.link`` (``[]`` when absent)."""
        links: list[dict[str, Any]] = self._data.get("link", [])
        return links

    def get_next_link(self) -> str | None:
        """The URL of the ``next`` page link, or ``None`` on the last page."""
        for link in self.link:
            if link.get("relation") == "next":
                return _str_or_none(link.get("url"))
        return None

    def get_total(self) -> int | None:
        """The number of matches, when knowable.

        ``Bundle.total`` when the server sent it (Medplum does for ``_total=accurate`` or
        ``estimate``); otherwise, on a single complete page (no ``next`` link), the count
        of ``match`` entries (``_include``-d resources are not matches); otherwise ``None``
        rather than passing a page size off as a total.
        """
        total = self._data.get("total")
        if isinstance(total, int) and not isinstance(total, bool):
            return total
        if self.get_next_link() is not None:
            return None
        return sum(
            1
            for e in self._entries
            if "resource" in e and (e.get("search") or {}).get("mode", "match") == "match"
        )

    @property
    def total(self) -> int | None:
        """Same as :meth:`get_total`."""
        return self.get_total()

    # --- batch / transaction responses ----------------------------------------------

    def entry_results(self) -> list[BundleEntryResult]:
        """One :class:`BundleEntryResult` per entry of a batch/transaction response.

        A 200 on the batch request says nothing about its entries: inspect these (or call
        :meth:`raise_for_entry_errors`).
        """
        results: list[BundleEntryResult] = []
        for index, entry in enumerate(self._entries):
            response = entry.get("response")
            response = response if isinstance(response, dict) else {}
            status = _parse_status(response.get("status"))
            resource = entry.get("resource")
            location = _str_or_none(response.get("location"))
            resource_id = _id_from_location(location) if location else None
            if resource_id is None and resource is not None:
                resource_id = _str_or_none(resource.get("id"))
            outcome = response.get("outcome")
            results.append(
                BundleEntryResult(
                    index=index,
                    status_code=status,
                    ok=status is not None and 200 <= status < 300,
                    resource_id=resource_id,
                    resource=resource,
                    outcome=outcome if isinstance(outcome, dict) else None,
                    location=location,
                    etag=_str_or_none(response.get("etag")),
                )
            )
        return results

    def failures(self) -> list[BundleEntryResult]:
        """The entry results that are not ``ok`` (non-2xx or without a status)."""
        return [r for r in self.entry_results() if not r.ok]

    def partition(self) -> tuple[list[BundleEntryResult], list[BundleEntryResult]]:
        """Entry results split into ``(successes, failures)``."""
        results = self.entry_results()
        return [r for r in results if r.ok], [r for r in results if not r.ok]

    def raise_for_entry_errors(self) -> None:
        """Raise :class:`BundleEntryError` listing every failed entry, if any failed."""
        failed = self.failures()
        if failed:
            raise BundleEntryError(failed)


def response_bundle(
    plain: dict[str, Any], body: bytes, as_fhir: type[BaseModel]
) -> FHIRBundle[Any]:
    """A typed FHIRBundle of a search answer: ``plain`` is ``body`` decoded.

    Its dicts (``raw``, ``get_resources``, the ``_include``-d resources it yields) are
    ``plain``: JSON values, as without ``as_fhir`` (``json.dumps`` takes them). Its models are
    validated from ``body`` decoded again when they are built, each decimal a ``Decimal``
    keeping its text. Kept as the bytes, not decoded up front: a 5,000-entry page held
    12.3x its size instead of 5.2x before a model was asked for.
    """
    bundle: FHIRBundle[Any] = FHIRBundle(plain, as_fhir=as_fhir)
    bundle._exact_body = body
    return bundle
