"""str / repr / sanitize_for_logging of server errors carry no PHI from the answer."""

from __future__ import annotations

import json

import httpx
import pytest

from pymedplum import OperationOutcomeError, ServerError
from tests.qa.conftest import QA, TOKEN

pytestmark = pytest.mark.anyio

PHI = "John Q Public 1970-01-01 SSN 123-45-6789"


def _outcome(code: str = "invalid", severity: str = "error") -> dict[str, object]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": severity,
                "code": code,
                "diagnostics": PHI,
                "details": {"text": PHI, "coding": [{"display": PHI}]},
                "expression": [f"Patient.name.where(family='{PHI}')"],
            }
        ],
    }


@pytest.mark.parametrize("status", [400, 404, 409, 412, 422, 429, 500, 503])
@pytest.mark.parametrize(
    "outcome", [_outcome(), _outcome(code=PHI), _outcome(severity=PHI)], ids=["text", "code", "sev"]
)
async def test_no_phi_in_str_repr_or_sanitized(
    qa: QA, status: int, outcome: dict[str, object]
) -> None:
    qa.handler = lambda r: httpx.Response(status, json=outcome)
    from pymedplum import RetryPolicy

    client = qa.client(retry=RetryPolicy(max_attempts=1))
    with pytest.raises(OperationOutcomeError) as info:
        await qa.call(client, "read_resource", "Patient", "1")
    exc = info.value
    texts = [str(exc), repr(exc), json.dumps(exc.sanitize_for_logging()), str(exc.args)]
    for text in texts:
        assert PHI not in text and "123-45" not in text and TOKEN not in text
    assert exc.outcome == outcome  # still there for the caller who asks
    if status >= 500:
        assert isinstance(exc, ServerError)
