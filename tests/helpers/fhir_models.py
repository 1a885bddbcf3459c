"""Small FHIR-shaped pydantic models standing in for the generated ``pymedplum.fhir``.

They use the same conventions: camelCase aliases, ``populate_by_name``, and a
``resourceType`` field with a fixed default on resources.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Element(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class Reference(Element):
    reference: str | None = None
    display: str | None = None


class Meta(Element):
    version_id: str | None = Field(None, alias="versionId")
    account: Reference | None = None
    accounts: list[Reference] | None = None


class HumanName(Element):
    text: str | None = None
    family: str | None = None
    given: list[str] | None = None


class Identifier(Element):
    system: str | None = None
    value: str | None = None


class Coding(Element):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(Element):
    coding: list[Coding] | None = None
    text: str | None = None


class Patient(Element):
    resource_type: Literal["Patient"] = Field("Patient", alias="resourceType")
    id: str | None = None
    meta: Meta | None = None
    name: list[HumanName] | None = None
    identifier: list[Identifier] | None = None
    birth_date: str | None = Field(None, alias="birthDate")


class Observation(Element):
    resource_type: Literal["Observation"] = Field("Observation", alias="resourceType")
    id: str | None = None
    status: str
    code: CodeableConcept | None = None


class ProjectMembershipAccessParameter(Element):
    name: str
    value_string: str | None = Field(None, alias="valueString")
    value_reference: Reference | None = Field(None, alias="valueReference")


class ProjectMembershipAccess(Element):
    policy: Reference
    parameter: list[ProjectMembershipAccessParameter] | None = None


class Untyped(BaseModel):
    """A model without a resourceType: typed bundle reads validate every resource into it."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
