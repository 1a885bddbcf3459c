"""The errors a new user's common mistakes produce say what to fix (both clients)."""

from __future__ import annotations

import httpx
import pytest

from pymedplum import AuthenticationError, BadRequestError, NotFoundError
from tests.qa.conftest import QA

pytestmark = pytest.mark.anyio

NOT_FOUND = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-found", "diagnostics": "Not found"}],
}
INVALID = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Unknown resource type"}],
}


async def test_a_misspelt_resource_type_suggests_the_known_one(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        await qa.call(qa.client(), "read_resource", "Patinet", "123")
    assert str(info.value) == (
        "HTTP 404 Not Found from GET /fhir/R4/Patinet/{id} [error/not-found]; "
        "'Patinet' is not a FHIR R4 or Medplum resource type (did you mean 'Patient'?)"
    )


async def test_an_unknown_resource_type_in_a_body_is_named_on_the_400(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(400, json=INVALID)
    with pytest.raises(BadRequestError) as info:
        await qa.call(qa.client(), "create_resource", {"resourceType": "Widget"})
    assert str(info.value) == (
        "HTTP 400 Bad Request from POST /fhir/R4/Widget [error/invalid]; "
        "'Widget' is not a FHIR R4 or Medplum resource type"
    )


async def test_a_missing_resource_of_a_known_type_gets_no_hint(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        await qa.call(qa.client(), "read_resource", "Patient", "does-not-exist")
    assert str(info.value) == "HTTP 404 Not Found from GET /fhir/R4/Patient/{id} [error/not-found]"


async def test_a_401_to_a_client_without_credentials_says_so(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(401, json=NOT_FOUND)
    with pytest.raises(AuthenticationError, match="the client has no credentials"):
        await qa.call(qa.client(access_token=None), "read_resource", "Patient", "1")
