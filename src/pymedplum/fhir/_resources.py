# Hand-written (not generated): the resource base and Resource-typed fields of the FHIR models.
"""Resources among the models in :mod:`pymedplum.fhir`.

* :func:`dispatch_resource` — validates a ``Resource``-typed field (``contained``,
  ``Bundle.entry.resource``, ...) into the concrete model named by its ``resourceType``, importing
  that model's module only when it is first needed; :class:`ResourceField` puts it on a field.
* :class:`ResourceBase` — the base of the generated ``Resource``: the Medplum metadata properties
  every resource exposes.

Not generated: which model a ``resourceType`` names is known only from the data, at run time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, cast

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, SchemaValidator, core_schema

from ._base import PACKAGE, FHIRModel

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaValue
    from pydantic.plugin._schema_validator import PluggableSchemaValidator


# resourceType -> the validator of its model, filled as known types are first met (a Bundle
# repeats a few types). Unknown names are not cached: they come from input and would grow it.
_RESOURCE_VALIDATORS: dict[str, SchemaValidator | PluggableSchemaValidator] = {}


def _resource_class(resource_type: str) -> Any:
    """The model class for ``resource_type`` (its module imported on first use), or None."""
    registry = importlib.import_module(f"{PACKAGE}._registry")
    module_name = registry.RESOURCE_MODULES.get(resource_type)
    if module_name is None:
        return None
    return getattr(importlib.import_module(f"{PACKAGE}.{module_name}"), resource_type)


def _resource_validator(resource_type: str) -> SchemaValidator | PluggableSchemaValidator | None:
    """The validator of the model for ``resource_type`` (its module imported on first use)."""
    validator = _RESOURCE_VALIDATORS.get(resource_type)
    if validator is None:
        cls = _resource_class(resource_type)
        if cls is None:
            return None
        if not cls.__pydantic_complete__:
            cls.model_rebuild()  # deferred schema: build it now
        validator = _RESOURCE_VALIDATORS[resource_type] = cls.__pydantic_validator__
    return validator


def dispatch_resource(value: Any) -> Any:
    """Validate a Resource-typed element into the model for its ``resourceType``.

    An unknown ``resourceType`` is kept losslessly as a generic ``Resource`` whose other elements
    are extras, rather than rejected.
    """
    if isinstance(value, ResourceBase):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "resource_type", "Input should be a FHIR resource (a JSON object with resourceType)"
        )
    resource_type = value.get("resourceType")
    if not isinstance(resource_type, str):
        raise PydanticCustomError("resource_type", "A resource needs a string resourceType")
    # The validator itself rather than cls.model_validate: a Bundle calls this per entry.
    validator = _resource_validator(resource_type) or _resource_validator("Resource")
    if validator is None:  # pragma: no cover - the registry always has Resource
        raise PydanticCustomError(
            "resource_type", "Unknown resourceType {rt}", {"rt": resource_type}
        )
    resource = validator.validate_python(value)
    # In a generic Resource (an unknown type, or the abstract Resource and DomainResource, which
    # declare no resourceType) it is an unknown element, and extras follow the known ones: put
    # it first, as for every concrete type.
    stored = resource.__dict__
    if "resourceType" in stored and next(iter(stored)) != "resourceType":
        object.__setattr__(
            resource, "__dict__", {"resourceType": stored.pop("resourceType"), **stored}
        )
    return resource


def resource_model(value: Any) -> Any:
    """The model a Resource-typed element holding ``value`` validated it with (or None)."""
    if isinstance(value, ResourceBase):
        return type(value)
    resource_type = value.get("resourceType") if isinstance(value, dict) else None
    if not isinstance(resource_type, str):
        return None
    # An unknown type is kept as a generic Resource (see dispatch_resource).
    return _resource_class(resource_type) or _resource_class("Resource")


class ResourceField:
    """``Annotated`` metadata of a ``Resource``-typed field (``AnyResource``).

    Validation dispatches on ``resourceType`` (:func:`dispatch_resource`); output is the concrete
    model's own (serialize as any). Its JSON schema is the ``Resource`` model's, in validation
    and serialization mode alike (a plain validator alone has none in serialization mode, which
    FastAPI uses for response models).
    """

    __slots__ = ()

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        resource = handler(source)
        if resource.get("type") == "definition-ref":
            # Metadata keeps the reference: pydantic inlines a definition used only once (a
            # model with one Resource field), and the schemas it then shares with other models
            # (see _base._share_definitions) gave their JSON schema the Resource model inline, without
            # its "$defs" entry, depending on which model was built first.
            resource = {**resource, "metadata": {"pymedplum_resource": True}}
        return core_schema.no_info_plain_validator_function(
            dispatch_resource,
            serialization=core_schema.simple_ser_schema("any"),
            json_schema_input_schema=resource,
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        resource = cast("dict[str, Any]", schema)["json_schema_input_schema"]
        return handler(resource)


def _get(obj: Any, name: str, alias: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(alias, obj.get(name))
    return getattr(obj, name, None)


class ResourceBase(FHIRModel):
    """Medplum metadata properties shared by every resource model."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        # A concrete resource always writes its resourceType (it may be left out on input): the
        # output's schema (FastAPI's response models) says so, as OpenAPI asks of the property
        # a discriminated union of resources is told apart by.
        if handler.mode == "serialization" and "resource_type" in cls.__pydantic_fields__:
            target = handler.resolve_ref_schema(json_schema)
            properties = target.get("properties", {})
            name = next((n for n in ("resourceType", "resource_type") if n in properties), None)
            required = target.setdefault("required", [])
            if name is not None and name not in required:
                required.insert(0, name)
        return json_schema

    @property
    def medplum_accounts(self) -> list[str]:
        """Every account reference in ``meta`` (``account`` first, then ``accounts``), deduped."""
        meta = getattr(self, "meta", None)
        refs: list[str] = []
        single = _get(meta, "account", "account")
        many = _get(meta, "accounts", "accounts") or []
        for ref in [single, *many]:
            text = _get(ref, "reference", "reference")
            if isinstance(text, str) and text and text not in refs:
                refs.append(text)
        return refs

    @property
    def medplum_account(self) -> str | None:
        """The primary account reference (first of :attr:`medplum_accounts`), or None."""
        accounts = self.medplum_accounts
        return accounts[0] if accounts else None

    @property
    def medplum_author(self) -> str | None:
        """``meta.author.reference``: who created or last updated the resource."""
        ref = _get(_get(getattr(self, "meta", None), "author", "author"), "reference", "reference")
        return ref if isinstance(ref, str) else None

    @property
    def medplum_project(self) -> str | None:
        """``meta.project``: the id of the Medplum project that owns the resource."""
        project = _get(getattr(self, "meta", None), "project", "project")
        return project if isinstance(project, str) else None

    @property
    def medplum_compartment(self) -> list[Any] | None:
        """``meta.compartment``: the access-control compartments (references), or None."""
        compartment = _get(getattr(self, "meta", None), "compartment", "compartment")
        return list(compartment) if compartment is not None else None
