"""The scripted fake (the embedded profile's chat model) does not import the OpenAI SDK
(heavy: pydantic models for the whole API, httpx2): only building `OpenAIChatModel`
does."""

from __future__ import annotations

import json
import subprocess
import sys

LIGHT = [
    "adapters.openai.fake",
    "adapters.openai.deadline",
    "adapters.openai.errors",
    "adapters.openai.chat",
]


def _imported_after(statements: str) -> list[str]:
    probe = f"{statements}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def _sdk(modules: list[str]) -> list[str]:
    return [name for name in modules if name == "openai" or name.startswith("openai.")]


def test_importing_the_openai_adapter_modules_does_not_import_the_sdk() -> None:
    loaded = _imported_after("\n".join(f"import {name}" for name in LIGHT))
    assert set(LIGHT) <= set(loaded)
    assert _sdk(loaded) == []


def test_the_probe_sees_the_sdk_once_a_model_is_built() -> None:
    loaded = _imported_after(
        "from adapters.openai.chat import OpenAIChatModel\n"
        "OpenAIChatModel(base_url='http://127.0.0.1:9/v1', api_key='k')"
    )
    assert "openai" in loaded
