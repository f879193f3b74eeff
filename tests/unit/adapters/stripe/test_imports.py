"""The embedded profile's payment modules do not import the Stripe SDK (about 30 MiB and
a quarter of a second): only verifying or signing a webhook, or building `StripeGateway`,
does."""

from __future__ import annotations

import json
import subprocess
import sys

LIGHT = [
    "adapters.stripe.fake_gateway",
    "adapters.stripe.simulator",
    "adapters.stripe.events",
    "adapters.stripe.webhooks",
    "adapters.stripe.gateway",  # the SDK comes in when a StripeGateway is built
]


def _imported_after(statements: str) -> list[str]:
    probe = f"{statements}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def test_importing_the_stripe_adapter_modules_does_not_import_the_sdk() -> None:
    loaded = _imported_after("\n".join(f"import {name}" for name in LIGHT))
    assert set(LIGHT) <= set(loaded)
    assert [name for name in loaded if name == "stripe" or name.startswith("stripe.")] == []


def test_the_probe_sees_the_sdk_once_a_webhook_is_signed() -> None:
    loaded = _imported_after(
        "from datetime import UTC, datetime\n"
        "from adapters.stripe.webhooks import sign\n"
        "sign(b'{}', 'whsec_x', datetime.now(UTC))"
    )
    assert "stripe" in loaded
