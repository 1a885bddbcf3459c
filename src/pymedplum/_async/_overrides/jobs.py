"""Async jobs: resolve the job reference, check its status once, or poll until it is done."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._async._synchronization import sleep
from pymedplum._endpoints import ENDPOINTS
from pymedplum._fhir_rules import ID_PATTERN, loggable_code
from pymedplum._request_builders.arguments import check_seconds
from pymedplum._request_builders.jobs import TERMINAL_JOB_STATUSES, bulk_data_done, job_locator
from pymedplum._request_builders.paths import is_absolute_url
from pymedplum._security import check_same_origin
from pymedplum.endpoint_types import JobReference
from pymedplum.exceptions import OperationOutcomeError

# The AsyncJob status URL Medplum hands out, after the FHIR base: job/<id>/status.
_JOB_PATH = re.compile(f"job/({ID_PATTERN})/status")
# Medplum 5.0.10's $export only logs a failure: its job stays active and the Bulk Data status
# URL (bulkdata.ts) answers 202 for any status but completed and cancelled, error included.
_BULK_DATA_TIMEOUT = (
    "; a Medplum Bulk Data status URL answers 202 for an export that failed too (the failure is "
    "only in the server's log)"
)


class JobOverrides(Dispatch):
    """Bodies of get_async_job_status and wait_for_async_job."""

    async def _job_status_request(self, locator: str) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, JSON object)`` of one status check (``{}`` for a 202 without body)."""
        endpoint = ENDPOINTS["get_async_job_status"]
        if is_absolute_url(locator):
            # The poll carries the bearer token: a job URL must stay on the client's origin.
            check_same_origin(self._origin, locator, what="the async job URL")
            match = _JOB_PATH.fullmatch(httpx.URL(locator).path.removeprefix(self._fhir_prefix))
            if match is None:
                # Another status URL (a Bulk Data export's): the RequestEvent describes the URL
                # itself, not a job/{id}/status it is not.
                return await self._request(
                    "GET",
                    locator,
                    base="absolute",
                    action="read",
                    refine_error=_bulk_data_error,
                    convert=self._job_answer,
                )
            # The job's id goes into the RequestEvent as for a bare id (resource_id, template).
            return await self._call_endpoint(
                endpoint, {"id": match.group(1)}, url=locator, convert=self._job_answer
            )
        return await self._call_endpoint(endpoint, {"id": locator}, convert=self._job_answer)

    def _job_answer(self, response: httpx.Response) -> tuple[int, dict[str, Any]]:
        return response.status_code, self._dict_response(response)

    async def _get_async_job_status(self, *, job: JobReference) -> dict[str, Any]:
        return (await self._job_status_request(job_locator(job)))[1]

    async def _wait_for_async_job(
        self, *, job: JobReference, poll_interval: float, timeout: float | None
    ) -> dict[str, Any]:
        check_seconds("poll_interval", poll_interval)
        if timeout is not None:
            check_seconds("timeout", timeout, alternative="None")
        locator = job_locator(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status_code, status = await self._job_status_request(locator)
            if status.get("status") in TERMINAL_JOB_STATUSES or bulk_data_done(status_code, status):
                return status
            if deadline is None:
                await sleep(poll_interval)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"async job still {_state(status_code, status)} after {timeout} seconds"
                    + ("" if status.get("status") is not None else _BULK_DATA_TIMEOUT)
                )
            await sleep(min(poll_interval, remaining))


def _bulk_data_error(error: OperationOutcomeError) -> OperationOutcomeError:
    """The 404 of a Bulk Data status URL, saying what it means: Medplum's bulkdata.ts answers
    its plain ``not-found`` outcome for an export whose job was cancelled (``DELETE`` on the
    same URL), as for an id it does not know."""
    if error.status_code != 404:
        return error
    return type(error)(
        f"{error}; Medplum answers 404 on a Bulk Data status URL once the export is cancelled "
        "(or when no export has that id)",
        outcome=error.outcome,
        status_code=error.status_code,
        response=error.response,
        method=error.method,
        path_template=error.path_template,
    )


def _state(status_code: int, status: dict[str, Any]) -> str:
    """How a job that is not done reads in the timeout message: its AsyncJob status, or, for a
    Bulk Data status URL (a 202 without a body), that it is still running."""
    state = status.get("status")
    if state is None:
        return f"running (HTTP {status_code})"
    # Only a code is shown (AsyncJob.status is one): the answer's text could be anything.
    return repr(state) if loggable_code(state) else "in a state that is not a status code"
