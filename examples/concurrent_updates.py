"""Optimistic locking with the async client: 20 concurrent writers, no lost update.

Run it against the local server (``python scripts/medplum_server.py run --port 0`` prints the
three settings) or a real Medplum project:

    MEDPLUM_BASE_URL=https://api.medplum.com/ \\
    MEDPLUM_CLIENT_ID=... MEDPLUM_CLIENT_SECRET=... python examples/concurrent_updates.py

Twenty asyncio tasks each add one note to the same Observation by read-modify-write.
``update_resource`` sends ``If-Match: W/"<meta.versionId>"`` of the model it is given, so a
task whose read is stale gets ``PreconditionFailedError`` (HTTP 412) instead of overwriting
the notes the others wrote; it reads again and retries. At the end every note is there. The
Observation is deleted again. It prints counts only.
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal

from pymedplum import AsyncMedplumClient, PreconditionFailedError
from pymedplum.fhir import Annotation, CodeableConcept, Observation, Quantity
from pymedplum.hooks import RequestEvent

WRITERS = 20


class ConflictCounter:
    """``on_request_complete`` hook: counts the updates the server refused with 412."""

    def __init__(self) -> None:
        self.conflicts = 0

    def __call__(self, event: RequestEvent) -> None:
        if event.action == "update" and event.final_status_code == 412:
            self.conflicts += 1


async def add_note(client: AsyncMedplumClient, obs_id: str, writer: int) -> int:
    """Append one note, retrying on 412; returns the number of attempts it took."""
    for attempt in range(1, 100):
        current = await client.read_resource("Observation", obs_id, as_fhir=Observation)
        # Assignment is validated; a new list (not .append) so that the element is checked.
        current.note = [*(current.note or []), Annotation(text=f"note from writer {writer}")]
        try:
            await client.update_resource(current)  # If-Match from current.meta.versionId
            return attempt
        except PreconditionFailedError:
            continue  # someone else wrote first: read again
    raise RuntimeError(f"writer {writer} gave up")


async def main() -> int:
    base_url = os.environ.get("MEDPLUM_BASE_URL")
    client_id = os.environ.get("MEDPLUM_CLIENT_ID")
    secret = os.environ.get("MEDPLUM_CLIENT_SECRET")
    if not (base_url and client_id and secret):
        print("set MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET", file=sys.stderr)
        return 1
    counter = ConflictCounter()
    async with AsyncMedplumClient(
        base_url, client_id=client_id, client_secret=secret, on_request_complete=counter
    ) as client:
        created = await client.create_resource(
            Observation(
                status="final",
                code=CodeableConcept(text="shared worklist item"),
                value_quantity=Quantity(value=Decimal("1.50"), unit="h"),
            ),
            as_fhir=Observation,
        )
        assert created.id is not None
        attempts = await asyncio.gather(
            *(add_note(client, created.id, writer) for writer in range(WRITERS))
        )
        final = await client.read_resource("Observation", created.id, as_fhir=Observation)
        notes = {note.text for note in final.note or []}
        print(f"{WRITERS} writers, {sum(attempts)} update attempts, {counter.conflicts} got 412")
        print(f"notes kept: {len(notes)} of {WRITERS}")
        await client.delete_resource("Observation", created.id)
        return 0 if len(notes) == WRITERS else 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
