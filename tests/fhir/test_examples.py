"""Every resource of the official FHIR R4 examples package round-trips through the models.

Contract: ``Model.model_validate_json(text)`` then
``model.model_dump_json(by_alias=True, exclude_none=True)`` gives JSON equal to the input, with
numbers compared as text; no element is left unknown to its model; and
``pymedplum.to_fhir_json(model)`` equals the input as a dict (``Observation-body-height``'s
``66.899999999999991`` stays a Decimal there: no float gives it back). The package is fetched
once (``npm pack``, pinned sha512) into ``.cache/fhir-packages/``.
"""

from __future__ import annotations

import pytest

from codegen.fhir_packages import ensure
from codegen.roundtrip import KNOWN_INVALID as ALL_KNOWN_INVALID
from codegen.roundtrip import roundtrip_package

pytestmark = pytest.mark.examples

# Official examples that are not valid FHIR R4 and that the models therefore reject (listed with
# the reason in docs/models.md). Anything else failing is a bug.
KNOWN_INVALID = ALL_KNOWN_INVALID["hl7.fhir.r4.examples@4.0.1"]


def test_r4_examples_round_trip() -> None:
    tarball = ensure("hl7.fhir.r4.examples@4.0.1")
    report = roundtrip_package("pymedplum.fhir", tarball, as_dict=True)
    unexpected = {k: v for k, v in report.failures.items() if k not in KNOWN_INVALID}
    assert unexpected == {}
    assert set(report.failures) == set(KNOWN_INVALID)
    for name in KNOWN_INVALID:
        assert "Field required" in report.failures[name]
    assert report.passed + len(report.failures) == 5306
