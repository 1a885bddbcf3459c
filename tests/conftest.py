"""Suite-wide test settings.

Hypothesis: property tests check behaviour, not speed, so no per-example deadline and no
"input generation is slow" health check — a loaded 2-core CI machine must not turn them flaky.
The example budget stays at Hypothesis' default.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "pymedplum",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("pymedplum")
