"""``make regen-check FHIR=r4b|r5``: generate models for another FHIR release and round-trip it.

Generates ``fhir_<release>`` from the release's core package (``hl7.fhir.r4b.core@4.3.0``,
``hl7.fhir.r5.core@5.0.0``) into a temporary directory with the same generator as
``make generate``, imports it, and round-trips every resource of the release's examples package.
Exits 0 only when every example round-trips (official examples that are invalid FHIR are listed
in ``codegen.roundtrip.KNOWN_INVALID`` and must fail as invalid).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from codegen import models
from codegen.fhir_packages import ensure
from codegen.roundtrip import check

RELEASES: dict[str, tuple[str, str]] = {
    "r4b": ("hl7.fhir.r4b.core@4.3.0", "hl7.fhir.r4b.examples@4.3.0"),
    "r5": ("hl7.fhir.r5.core@5.0.0", "hl7.fhir.r5.examples@5.0.0"),
}


def run(release: str) -> bool:
    if release not in RELEASES:
        raise SystemExit(f"unknown FHIR release {release!r}; one of {sorted(RELEASES)}")
    core, examples = RELEASES[release]
    package = f"fhir_{release}"
    with tempfile.TemporaryDirectory(prefix="pymedplum-regen-") as tmp:
        out = Path(tmp) / package
        gen = models.generate([str(ensure(core))], out, package, core)
        print(f"{package}: {len(gen.model.types)} classes generated from {core}")
        sys.path.insert(0, tmp)
        try:
            return check(package, examples)
        finally:
            sys.path.remove(tmp)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    ok = all([run(release) for release in args or ["r4b"]])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
