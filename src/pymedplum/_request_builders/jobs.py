"""Asynchronous jobs: the job a status call is about (an id, a status URL, or the
OperationOutcome of a ``Prefer: respond-async`` call), and when a job's status is final.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from pymedplum._serialization import to_fhir_json


def job_locator(job: object) -> str:
    """A job id or status URL out of ``get_async_job_status``'s argument.

    An OperationOutcome (dict or model) carries the URL in ``issue[0].diagnostics``. Another
    resource (an AsyncJob, say) or an empty str is a ValueError saying what is accepted.
    """
    accepted = (
        "a job id, a status URL, or the OperationOutcome answered by a Prefer: respond-async "
        "call (its issue[0].diagnostics is the job URL)"
    )
    if isinstance(job, BaseModel):
        job = to_fhir_json(job)
    if isinstance(job, Mapping):
        kind = job.get("resourceType", "OperationOutcome")
        if kind != "OperationOutcome":
            hint = "; pass its id instead" if kind == "AsyncJob" else ""
            raise ValueError(f"job must be {accepted}, got a resource of type {kind!r}{hint}")
        issues = job.get("issue")
        first = issues[0] if isinstance(issues, list) and issues else None
        url = first.get("diagnostics") if isinstance(first, Mapping) else None
        if not isinstance(url, str) or not url.strip():
            raise ValueError("job is an OperationOutcome without a job URL in issue[0].diagnostics")
        return url.strip()
    if isinstance(job, str):
        if not job.strip():
            raise ValueError(f"job must not be empty: pass {accepted}")
        return job.strip()
    raise TypeError(f"job must be {accepted}, got {type(job).__name__}")


TERMINAL_JOB_STATUSES = frozenset({"completed", "error", "cancelled"})


def bulk_data_done(status_code: int, body: Mapping[str, Any]) -> bool:
    """Whether a job status answer is a finished FHIR Bulk Data export. Its status URL
    (Medplum's $export hands out ``fhir/R4/bulkdata/export/{id}``) has no AsyncJob: it answers
    202 with an empty body while the export runs and 200 with the export manifest, which has no
    ``status``, once done. (Kept out of the async module: unasync would rename "AsyncJob".)"""
    return status_code == 200 and body.get("resourceType") != "AsyncJob" and "status" not in body
