"""The ``as_fhir`` argument: the model class an answer is read into, checked against the
request's resource type before the request is sent, and the warning for a search given
``as_fhir`` without ``return_bundle=True``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from pymedplum._warnings import warn_caller
from pymedplum.bundle import describe_non_model_class, model_resource_type


def warn_as_fhir_without_bundle(as_fhir: type[BaseModel] | None, return_bundle: bool) -> None:
    """A UserWarning at the caller's line when a search is given ``as_fhir`` but not
    ``return_bundle=True``: the contract applies ``as_fhir`` to the FHIRBundle only, so the
    Bundle dict comes back and the model class would be ignored without a word."""
    if as_fhir is not None and not return_bundle:
        name = as_fhir.__name__
        warn_caller(
            f"as_fhir={name} has no effect without return_bundle=True: the Bundle dict is "
            f"returned. Pass return_bundle=True for a FHIRBundle of {name} models, or iterate "
            f"search_resource_pages(..., as_fhir={name})"
        )


def check_model_class(arg: str, value: object, target: object = None) -> None:
    """TypeError naming ``arg`` unless ``value`` is None or a pydantic model class; ValueError
    when the model is for another resource type than ``target`` (a resource type name, or the
    resource about to be sent). Checked before a request is sent, so that a create is not
    applied and then fails on its answer."""
    if value is None:
        return
    if not (isinstance(value, type) and issubclass(value, BaseModel)):
        raise TypeError(
            f"{arg} must be a pydantic model class (e.g. Patient) or None, "
            f"got {describe_non_model_class(value)}"
        )
    expected = model_resource_type(value)
    if expected is None or target is None:
        return  # a model of no fixed type (a user's own, Resource) fits any answer
    if isinstance(target, str):
        actual: object = target
    elif isinstance(target, Mapping):
        actual = target.get("resourceType")
    else:
        actual = getattr(target, "resource_type", None) or getattr(target, "resourceType", None)
    if isinstance(actual, str) and actual != expected:
        raise ValueError(
            f"{arg}={value.__name__} reads {expected} resources, but this request is for "
            f"{actual}; pass as_fhir={actual} (from pymedplum.fhir) or leave it out"
        )
