"""The generated payload models validate the JSON Medplum answers and keep unknown fields."""

from __future__ import annotations

import pydantic
import pytest

from pymedplum.payloads import AsyncJobStatus, GraphQLResponse, SetAccountsResult, TokenResponse


def test_token_response() -> None:
    token = TokenResponse.model_validate(
        {
            "token_type": "Bearer",
            "access_token": "abc",
            "expires_in": 3600,
            "scope": "openid",
            "project": {"reference": "Project/p1"},
            "profile": {"reference": "ClientApplication/c1", "display": "bot"},
            "login": "l-1",
        }
    )
    assert token.access_token == "abc" and token.expires_in == 3600
    assert token.project is not None and token.project.reference == "Project/p1"
    assert token.model_extra == {"login": "l-1"}  # nothing the server sent is dropped
    with pytest.raises(pydantic.ValidationError, match="access_token"):
        TokenResponse.model_validate({"token_type": "Bearer"})


def test_async_job_status() -> None:
    job = AsyncJobStatus.model_validate(
        {
            "resourceType": "AsyncJob",
            "id": "j1",
            "status": "completed",
            "request": "https://medplum.test/fhir/R4/Patient/1/$set-accounts",
            "output": {"resourceType": "Parameters", "parameter": []},
        }
    )
    assert job.status == "completed"
    with pytest.raises(pydantic.ValidationError, match="status"):
        AsyncJobStatus.model_validate({"resourceType": "AsyncJob", "status": "done"})


def test_graphql_response() -> None:
    result = GraphQLResponse.model_validate(
        {
            "data": None,
            "errors": [
                {"message": "bad", "locations": [{"line": 1, "column": 2}], "path": ["a", 0]}
            ],
        }
    )
    assert result.errors is not None
    assert result.errors[0].locations is not None and result.errors[0].locations[0].column == 2
    assert result.errors[0].path == ["a", 0]
    assert GraphQLResponse.model_validate({"data": {"Patient": {"id": "1"}}}).data == {
        "Patient": {"id": "1"}
    }


def test_set_accounts_result() -> None:
    result = SetAccountsResult.model_validate(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "resourcesUpdated", "valueInteger": 3}],
        }
    )
    assert result.parameter[0].valueInteger == 3
