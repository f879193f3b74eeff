"""The log-safety check (tests/log_safety) finds leaks, fills its registry by itself,
captures every path the app logs through, and fails a leaking test by name."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from adapters.memory.security import InMemoryPasswordHasher
from adapters.system.tokens import SecretsTokenGenerator
from core.shared.hashing import fingerprint
from entrypoints.bootstrap.logging import configure_logging
from entrypoints.bootstrap.settings import Settings
from entrypoints.http.access_log import AccessLog
from tests.log_safety.capture import LogCapture
from tests.log_safety.leaks import find_leaks
from tests.log_safety.registry import REGISTRY, SecretRegistry

pytest_plugins = ["pytester"]

SECRET = "s3cr3t-Value-0123456789"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


# --- the checker, on crafted text ---------------------------------------------------------


def test_a_registered_secret_is_found_named_and_masked() -> None:
    registry = SecretRegistry()
    registry.add(SECRET, "a password")
    (leak,) = find_leaks(f'{{"event": "login", "note": "{SECRET}"}}', registry)
    assert leak.what == f"a password ({len(SECRET)} chars)"
    assert SECRET not in str(leak) and '"note": "s3cr<' in str(leak)


def test_among_many_secrets_each_one_is_found() -> None:
    registry = SecretRegistry()
    secrets = [unique("token") for _ in range(2000)]
    for secret in secrets:
        registry.add(secret, "a token")
    registry.add("short-pw", "a password")  # 8 characters: the shortest kept
    # Whatever is around it, at whatever offset (quoted-printable mail text: `=3D<token>`).
    for offset in range(12):
        text = f"{'x' * offset}=3D{secrets[offset]}{secrets[1000 + offset]}&short-pw."
        found = registry.found_in(text)
        assert sorted(found) == sorted([secrets[offset], secrets[1000 + offset], "short-pw"])
    assert registry.found_in("nothing secret here, " * 100) == []


def test_short_values_are_not_secrets_and_hashes_are_not_leaks() -> None:
    registry = SecretRegistry()
    registry.add("abc1234", "a password")  # 7 characters: in any log by chance
    registry.add(SECRET, "a session id")
    assert len(registry) == 1
    # What the session store keys on: the SHA-256 of the id, never the id.
    assert find_leaks(f"session:{fingerprint(SECRET)} abc1234", registry) == []


@pytest.mark.parametrize(
    "line",
    [
        "GET /x Authorization: Bearer 3q2-7wABCDEFGHIJKLMNOP",
        "stripe key=sk_live_abcdefghij12",
        "using sk_test_51Habcdefghij0123",
        "secret whsec_abcdefgh123",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
        "body=email=a%40b.c&password=hunter2-hunter2",
        '{"event": "x", "password": "hunter2"}',
        "Credentials(email='a@b.c', password='Correct-horse-battery')",
        "new_password=Zz9-secret",
    ],
)
def test_secret_shapes_are_found_whoever_made_them(line: str) -> None:
    assert find_leaks(line, SecretRegistry()), line


@pytest.mark.parametrize(
    "line",
    [
        '{"password": "[redacted]", "password_hash": "[redacted]"}',
        "    await accounts.login(email, password=credentials.password)",
        "    hashed = await hasher.hash(password=password)",
        '{"access_token": "[redacted]", "token_type": "bearer"}',
        "Bearer authentication failed: no token",
        'WWW-Authenticate: Bearer realm="portico", error="invalid_token"',
        "password=None password=''",
    ],
)
def test_redacted_values_code_and_prose_are_not_leaks(line: str) -> None:
    assert find_leaks(line, SecretRegistry()) == [], line


# --- the registry fills itself --------------------------------------------------------------


def test_secret_settings_are_registered() -> None:
    key, webhook = unique("sk_test"), unique("whsec")
    Settings(_env_file=None, stripe={"api_key": key, "webhook_secret": webhook})  # type: ignore[call-arg]
    assert key in REGISTRY and webhook in REGISTRY
    assert REGISTRY.source(key) == "a SecretStr (a secret setting)"


async def test_passwords_the_hasher_sees_are_registered() -> None:
    hasher, password, other = InMemoryPasswordHasher(), unique("pw"), unique("pw")
    hashed = await hasher.hash(password)
    assert not await hasher.verify(hashed, other)
    assert password in REGISTRY and other in REGISTRY and hashed not in REGISTRY


def test_secret_tokens_are_registered_and_public_handles_are_not() -> None:
    tokens = SecretsTokenGenerator()
    session_id, family_id = tokens.token(32), tokens.token(16)
    assert session_id in REGISTRY and family_id not in REGISTRY


def _app(cookie: str, access: str) -> Starlette:
    async def login(request: Request) -> JSONResponse:
        answer = JSONResponse({"access_token": access, "token_type": "bearer-ish-type"})
        answer.set_cookie("sid", cookie)
        return answer

    return Starlette(routes=[Route("/login", login, methods=["POST"])])


def test_credentials_crossing_http_are_registered() -> None:
    cookie, access, password, bearer, csrf, sent_cookie = (unique(n) for n in "abcdef")
    client = TestClient(_app(cookie, access), cookies={"pre": sent_cookie})
    answer = client.post(
        "/login",
        json={"email": "a@b.c", "password": password},
        headers={"Authorization": f"Bearer {bearer}", "X-CSRF-Token": csrf},
    )
    assert answer.status_code == 200
    for secret in (cookie, access, password, bearer, csrf, sent_cookie):
        assert secret in REGISTRY, secret
    assert "bearer-ish-type" not in REGISTRY  # a field that holds no credential


def test_credentials_sent_by_plain_httpx_are_registered() -> None:
    api_key, refresh = unique("sk_test"), unique("refresh")

    def stripe_like(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"refresh_token": refresh})

    with httpx.Client(transport=httpx.MockTransport(stripe_like)) as client:
        client.get("http://fake.test/v1/x", headers={"Authorization": f"Bearer {api_key}"})
    assert api_key in REGISTRY and refresh in REGISTRY


# --- the live plugin captures every path the app logs through ------------------------------


@pytest.fixture
def capture(request: pytest.FixtureRequest) -> LogCapture:
    plugin = request.config.pluginmanager.get_plugin("log_safety")
    assert plugin is not None and plugin.capture.active  # this test is checked (marker)
    return plugin.capture  # type: ignore[no-any-return]


@pytest.mark.log_safety
def test_stdlib_records_of_any_logger_and_level_are_captured_whole(capture: LogCapture) -> None:
    logger = logging.getLogger("some.library.deep.down")
    try:
        raise ValueError("marker-in-a-traceback")
    except ValueError:
        logger.debug("marker-debug %s", "argument", extra={"detail": "marker-extra"}, exc_info=True)
    text = capture.text()
    for marker in ("marker-debug argument", "marker-extra", "marker-in-a-traceback", "Traceback"):
        assert marker in text, marker


@pytest.mark.log_safety
def test_records_below_the_apps_level_reach_the_capture_only(
    capture: LogCapture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as a runtime starting does (caplog restores it)
    assert logging.getLogger().level == logging.INFO  # levels are left alone
    logging.getLogger("some.library").debug("marker-below-the-level")
    logging.getLogger("some.library").info("marker-at-the-level")
    assert "marker-below-the-level" in capture.text()
    assert "marker-below-the-level" not in caplog.text  # the app's handlers: as ever
    assert "marker-at-the-level" in caplog.text and "marker-at-the-level" in capture.text()
    # A logger with a level of its own keeps it (SQLAlchemy's WARN: no SQL echo).
    quiet = logging.getLogger("some.quiet.library")
    quiet.setLevel(logging.WARNING)
    try:
        assert logging.getLogger("some.library").isEnabledFor(logging.DEBUG)
        assert not quiet.isEnabledFor(logging.INFO)
    finally:
        quiet.setLevel(logging.NOTSET)


@pytest.mark.log_safety
def test_structlog_lines_are_captured_even_when_a_test_reads_stdout(
    capture: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")  # what every runtime does at start
    structlog.get_logger("probe").info("marker-structlog", field="marker-field")
    logging.getLogger("core.probe").info("marker-stdlib-info")
    assert "marker-structlog" in capsys.readouterr().out  # taken from pytest's capture...
    text = capture.text()
    for marker in ("marker-structlog", "marker-field", "marker-stdlib-info"):
        assert marker in text, marker  # ...and still captured here


@pytest.mark.log_safety
def test_access_log_lines_are_captured(capture: LogCapture) -> None:
    AccessLog().request(
        request_id="marker-request-id",
        method="GET",
        route="/marker",
        status=200,
        duration_ms=1.0,
        user_id=None,
    )
    assert "marker-request-id" in capture.text()


@pytest.mark.log_safety
def test_what_subprocesses_write_to_log_files_or_pipes_is_captured(
    capture: LogCapture, tmp_path: Path
) -> None:
    # Like a Celery worker of the integration suite: output to a log file of the test's.
    with (tmp_path / "worker.log").open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", "print('marker-log-file')"], stdout=log, stderr=log
        )
        assert child.wait(10) == 0
    # Like the CLI runs: output captured by `subprocess.run`.
    subprocess.run(
        [sys.executable, "-c", "import sys; print('marker-pipe', file=sys.stderr)"],
        capture_output=True,
        check=True,
        timeout=10,
    )
    text = capture.text()
    assert "marker-log-file" in text and "marker-pipe" in text


@pytest.mark.log_safety
def test_the_tests_own_http_clients_are_not_the_apps_log(capture: LogCapture) -> None:
    # The test's browser requests the URLs the app redirects it to (OAuth `code` and
    # `state` in them): the client library logs them, the app does not.
    token = unique("state")
    REGISTRY.add(token, "a token from the TokenGenerator")

    def provider(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(provider)) as client:
        client.get(f"http://provider.test/callback?state={token}")
    assert token not in capture.text()
    logging.getLogger("some.adapter").info("marker-app-line")  # control: captured
    assert "marker-app-line" in capture.text()


# --- the plugin fails a leaking test, by name ----------------------------------------------


def test_a_leaking_test_fails_at_teardown_naming_what_leaked(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        """
        from pathlib import Path
        from tests.log_safety.plugin import LogSafety

        def pytest_configure(config):
            config.pluginmanager.register(LogSafety(checked=[Path(__file__).parent]), "log_safety")
        """
    )
    pytester.makepyfile(
        test_inner="""
        import hashlib
        import logging

        import structlog
        from pydantic import SecretStr

        JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"

        def test_logs_a_secret_setting():
            key = SecretStr("inner-api-key-0123456789")
            logging.getLogger("some.adapter").info("calling with %s", key.get_secret_value())

        def test_logs_a_jwt_through_structlog():
            structlog.get_logger("some.adapter").info(f"token {JWT}")

        def test_logs_only_a_fingerprint():
            key = SecretStr("inner-api-key-abcdefghij").get_secret_value()
            hashed = hashlib.sha256(key.encode()).hexdigest()
            logging.getLogger("some.adapter").info("key %s", hashed)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*ERROR at teardown of test_logs_a_secret_setting*",
            "*a SecretStr (a secret setting) (24 chars): ...*calling with inne<20 more chars>*",
            "*ERROR at teardown of test_logs_a_jwt_through_structlog*",
            "*a JWT: ...*token eyJh<*",
        ]
    )


def test_a_cleared_registry_searches_for_nothing_it_held() -> None:
    registry = SecretRegistry()
    registry.add("conversation_id", "a password")
    registry.add("a-much-longer-secret-value-0123456789", "a token")
    assert registry.found_in("CREATE TABLE messages (conversation_id INTEGER)")
    registry.clear()
    assert len(registry) == 0
    assert registry.found_in("conversation_id a-much-longer-secret-value-0123456789") == []
    registry.add("conversation_id", "a password")  # usable again
    assert registry.found_in("x conversation_id y") == ["conversation_id"]
