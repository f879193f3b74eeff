"""The `EmailSender` contract, on the in-memory sender, the console sender (what it
writes to stderr, captured) and the SMTP sender talking to a real SMTP server (aiosmtpd)
that each test starts on a free local port.

The shared suite checks what every sender promises (the message arrives whole: both
parts, headers, unicode, a stable Message-ID; the console shows the HTML part's size,
not its markup); the SMTP tests then check the error mapping (5xx ->
`EmailRejectedError`, 4xx / no server / a silent server / bad login ->
`UnavailableError`, each within its timeout) and both TLS modes.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from adapters.memory.email import InMemoryEmailSender
from adapters.smtp.sender import DEADLINE_FACTOR, SmtpEmailSender, message_id_header
from adapters.system.console_email import ConsoleEmailSender
from core.notifications.errors import EmailRejectedError
from core.notifications.model import EmailCategory, EmailMessage
from core.notifications.ports import EmailSender
from core.shared.errors import UnavailableError
from tests.private_servers import free_port
from tests.services import need

SENDER = "Portico Robot <robot@portico.example>"
SENDER_DOMAIN = "portico.example"


@dataclass(frozen=True)
class Received:
    """A delivered message, as the receiving side sees it."""

    to: str
    subject: str
    text: str
    html: str | None
    message_id: str | None
    raw: MimeMessage | None = None
    html_size: int | None = None  # characters of the HTML part, where only that is shown


def message(**changes: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "to": "ada@example.com",
        "subject": "Grüße aus Zürich — 你好 ✉",
        "text": "Hallo Ada,\n\ndein Link: https://app.example/verify?token=abc&x=1\n\nÇa va? 👋\n",
        "html": '<p>Hallo <b>Ada</b>, <a href="https://app.example/verify?token=abc&amp;x=1">'
        "bestätigen</a> — 你好 👋</p>",
        "message_id": "verify_email:42:7",
        "category": EmailCategory.SECURITY,
    }
    values.update(changes)
    return EmailMessage(**values)


# --- an SMTP server in the test's own event loop ----------------------------------------


class Recorder:
    """aiosmtpd handler: accepts everything, or answers `rcpt_reply` / `data_reply`."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.envelopes: list[Envelope] = []
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def received(self) -> list[Received]:
        found = []
        for envelope in self.envelopes:
            raw = envelope.original_content or envelope.content
            assert isinstance(raw, bytes)
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, MimeMessage)
            text_part = parsed.get_body(preferencelist=("plain",))
            html_part = parsed.get_body(preferencelist=("html",))
            found.append(
                Received(
                    to=str(parsed["To"]),
                    subject=str(parsed["Subject"]),
                    text=_lines(text_part) or "",
                    html=_lines(html_part),
                    message_id=str(parsed["Message-ID"]),
                    raw=parsed,
                )
            )
        return found


def _lines(part: Any) -> str | None:
    # The wire uses CRLF; readers see their own line ends.
    return None if part is None else str(part.get_content()).replace("\r\n", "\n")


SmtpServer = Callable[..., Awaitable[int]]


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    """`port = await smtp_server(handler, ssl=None, **smtp_options)`: an aiosmtpd server on
    a free port of 127.0.0.1, closed when the test ends."""
    servers: list[asyncio.Server] = []

    async def start(handler: Any, ssl: ssl.SSLContext | None = None, **options: Any) -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="localhost", loop=loop, **options),
            "127.0.0.1",
            0,
            ssl=ssl,
        )
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def smtp_sender(port: int, **options: Any) -> SmtpEmailSender:
    options.setdefault("timeout", 5.0)
    return SmtpEmailSender(
        "127.0.0.1", port, sender_address=SENDER, local_hostname="client.test", **options
    )


# --- the shared contract ------------------------------------------------------------------


@dataclass
class SenderUnderTest:
    name: str
    sender: EmailSender
    received: Callable[[], list[Received]]
    shows_html: bool = True  # the console shows the HTML part's size, not its markup


def _memory_received(sender: InMemoryEmailSender) -> list[Received]:
    return [Received(m.to, m.subject, m.text, m.html, m.message_id) for m in sender.outbox]


_CONSOLE_BLOCK = re.compile(r"^-{72}\n(.*?)^-{72}$", re.DOTALL | re.MULTILINE)
_CONSOLE_HTML_NOTE = re.compile(r"\n\n\[HTML part: (\d+) characters, not shown\]\n\Z")


def _console_received(output: str) -> list[Received]:
    """The messages in the console sender's output, one block each: headers, a blank
    line, the text part, then a note of the HTML part's size when there is one."""
    found = []
    for block in _CONSOLE_BLOCK.findall(output):
        head, body = block.split("\n\n", 1)
        headers = dict(line.split(": ", 1) for line in head.splitlines())
        note = _CONSOLE_HTML_NOTE.search(body)
        if note is not None:
            body = body[: note.start()]
        found.append(
            Received(
                to=headers["To"],
                subject=headers["Subject"],
                text=body,
                html=None,
                message_id=headers.get("Message-ID"),
                html_size=int(note.group(1)) if note else None,
            )
        )
    return found


def _console(capsys: pytest.CaptureFixture[str]) -> SenderUnderTest:
    written: list[str] = []

    def received() -> list[Received]:
        captured = capsys.readouterr()
        written.append(captured.err)
        assert captured.out == "", "the console sender writes to stderr only"
        return _console_received("".join(written))

    # Built as the composition root builds it: the stream is stderr, looked up per write.
    sender = ConsoleEmailSender(sender_address=SENDER)
    return SenderUnderTest("console", sender, received, shows_html=False)


@pytest.fixture(params=["memory", "console", pytest.param("smtp", marks=pytest.mark.integration)])
async def under_test(request: pytest.FixtureRequest, smtp_server: SmtpServer) -> SenderUnderTest:
    if request.param == "memory":
        memory = InMemoryEmailSender()
        return SenderUnderTest("memory", memory, lambda: _memory_received(memory))
    if request.param == "console":
        return _console(request.getfixturevalue("capsys"))
    recorder = Recorder()
    port = await smtp_server(recorder)
    return SenderUnderTest("smtp", smtp_sender(port), recorder.received)


def expected_message_id(under_test: SenderUnderTest, message_id: str) -> str:
    # Memory and console keep the id as given; SMTP makes a Message-ID header of it.
    if under_test.name in ("memory", "console"):
        return message_id
    return message_id_header(message_id, SENDER_DOMAIN)


async def test_a_sent_message_arrives_with_both_parts_and_unicode_intact(
    under_test: SenderUnderTest,
) -> None:
    sent = message()
    await under_test.sender.send(sent)
    (got,) = under_test.received()
    assert got.to == sent.to
    assert got.subject == sent.subject
    assert got.text.rstrip("\n") == sent.text.rstrip("\n")
    assert sent.html is not None
    if under_test.shows_html:
        assert got.html is not None and got.html.rstrip("\n") == sent.html.rstrip("\n")
    else:
        assert got.html is None and got.html_size == len(sent.html)
    assert got.message_id == expected_message_id(under_test, "verify_email:42:7")


async def test_a_text_only_message_arrives_without_an_html_part(
    under_test: SenderUnderTest,
) -> None:
    await under_test.sender.send(message(html=None, subject="Plain"))
    (got,) = under_test.received()
    assert got.html is None and got.html_size is None
    assert got.subject == "Plain" and "Hallo Ada" in got.text


async def test_sending_twice_delivers_twice_with_the_same_message_id(
    under_test: SenderUnderTest,
) -> None:
    # Not idempotent by itself: the stable Message-ID is what lets a receiver drop a
    # repeat after a job was retried.
    await under_test.sender.send(message())
    await under_test.sender.send(message())
    first, second = under_test.received()
    assert first.message_id == second.message_id is not None


async def test_messages_without_an_id_get_distinct_ids(under_test: SenderUnderTest) -> None:
    await under_test.sender.send(message(message_id=None))
    await under_test.sender.send(message(message_id=None))
    first, second = under_test.received()
    if under_test.name == "smtp":  # the transport adds one; memory keeps None
        assert first.message_id and second.message_id and first.message_id != second.message_id


# --- the in-memory sender's failure injection ---------------------------------------------


async def test_memory_sender_fails_as_told_and_keeps_nothing_then() -> None:
    sender = InMemoryEmailSender()
    sender.fail_next(UnavailableError(dependency="email"), times=2)
    sender.fail_next(EmailRejectedError())
    for expected in (UnavailableError, UnavailableError, EmailRejectedError):
        with pytest.raises(expected):
            await sender.send(message())
    assert sender.outbox == []
    await sender.send(message())
    assert len(sender.sent_to("ada@example.com")) == 1


# --- SMTP: what arrives on the wire --------------------------------------------------------


@pytest.mark.integration
async def test_smtp_envelope_and_headers(smtp_server: SmtpServer) -> None:
    recorder = Recorder()
    port = await smtp_server(recorder)
    await smtp_sender(port).send(message())
    (envelope,) = recorder.envelopes
    assert envelope.mail_from == "robot@portico.example"
    assert envelope.rcpt_tos == ["ada@example.com"]
    (got,) = recorder.received()
    raw = got.raw
    assert raw is not None
    assert raw.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in raw.iter_parts()] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in raw.iter_parts())
    # 7-bit clean on the wire, whatever the relay supports.
    assert all(part["Content-Transfer-Encoding"] == "quoted-printable" for part in raw.iter_parts())
    assert str(raw["From"]) == SENDER
    assert raw["Date"] is not None
    assert got.message_id == "<verify_email%3A42%3A7@portico.example>"


def test_message_ids_are_valid_stable_and_distinct() -> None:
    assert message_id_header("a.b", "x.example") == "<a%2Eb@x.example>"
    assert message_id_header("a b", "x.example") != message_id_header("a_b", "x.example")
    assert message_id_header("<given@elsewhere>", "x.example") == "<given@elsewhere>"
    assert message_id_header("k:1", "x.example") == message_id_header("k:1", "x.example")
    long_a, long_b = message_id_header(":" * 200, "x.example"), message_id_header(":" * 199, "x")
    assert len(long_a) < 100 and long_a == message_id_header(":" * 200, "x.example")
    assert long_a.split("@")[0] != long_b.split("@")[0]


# --- SMTP: error mapping -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (Recorder(rcpt_reply="550 5.1.1 No such user here"), EmailRejectedError),
        (Recorder(data_reply="554 5.6.0 Message refused"), EmailRejectedError),
        (Recorder(rcpt_reply="451 4.3.0 Try again later"), UnavailableError),
        (Recorder(data_reply="452 4.3.1 Insufficient system storage"), UnavailableError),
    ],
    ids=["rcpt-550", "data-554", "rcpt-451", "data-452"],
)
async def test_smtp_replies_map_to_permanent_or_transient_errors(
    smtp_server: SmtpServer, handler: Recorder, expected: type[Exception]
) -> None:
    port = await smtp_server(handler)
    with pytest.raises(expected) as caught:
        await smtp_sender(port).send(message())
    assert handler.envelopes == []
    if isinstance(caught.value, UnavailableError):
        assert caught.value.dependency == "email"
    # The server's own words stay out of the detail (it may end up in an answer).
    assert "Try again" not in str(caught.value) and "No such user" not in str(caught.value)


# Timing bounds below are generous on purpose (a loaded 2-core machine must pass them):
# each test tells the outcomes apart by what was raised and by bounds far from both.


@pytest.mark.integration
async def test_smtp_closed_port_is_unavailable_at_once() -> None:
    # Refused in milliseconds; waiting out the 10 s timeout would take twice the bound.
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        await smtp_sender(free_port(), timeout=10.0).send(message())
    assert time.monotonic() - started < 5.0


@pytest.mark.integration
async def test_smtp_silent_server_is_unavailable_within_the_timeout() -> None:
    # Accepts the connection and never says a word (no greeting).
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(UnavailableError) as caught:
            await smtp_sender(port, timeout=0.5).send(message())
        elapsed = time.monotonic() - started
        # The step timed out (aiosmtplib's timeout error), after the step's timeout and
        # well within ten of them: a silent server does not hold a send.
        assert isinstance(caught.value.__cause__, aiosmtplib.SMTPTimeoutError)
        assert 0.5 * 0.9 <= elapsed < 0.5 * 10
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.integration
async def test_smtp_a_server_that_answers_each_step_just_in_time_hits_the_deadline() -> None:
    # Every answer comes inside the per-step timeout (0.35 s of 0.6 s: room for a loaded
    # machine), and seven of them (2.45 s) outlast the whole-send deadline
    # (DEADLINE_FACTOR x timeout = 1.8 s): only that deadline can stop the delivery.
    step, timeout = 0.35, 0.6
    deadline = DEADLINE_FACTOR * timeout

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(step)
            writer.write(b"220 slow.example ESMTP\r\n")
            while line := await reader.readline():
                await asyncio.sleep(step)
                command = line.strip().upper()
                if command == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    while (await reader.readline()).rstrip(b"\r\n") != b".":
                        pass
                    await asyncio.sleep(step)
                writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(UnavailableError) as caught:
            await smtp_sender(port, timeout=timeout).send(message())
        elapsed = time.monotonic() - started
        # Our deadline (a plain TimeoutError), not a step's (aiosmtplib's own error).
        assert type(caught.value.__cause__) is TimeoutError
        assert deadline * 0.9 <= elapsed < deadline * 3
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.integration
async def test_smtp_login_with_the_right_and_the_wrong_password(smtp_server: SmtpServer) -> None:
    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"portico",
            b"s3cret-pass",
        )
        # handled=False: aiosmtpd answers 535 itself.
        return AuthResult(success=ok, handled=False)

    recorder = Recorder()
    # Plain-text AUTH is fine on loopback in a test; production uses TLS (see below).
    port = await smtp_server(recorder, authenticator=authenticator, auth_require_tls=False)
    await smtp_sender(port, username="portico", password="s3cret-pass").send(message())
    assert len(recorder.envelopes) == 1
    # Bad credentials are the deployment's fault, not the message's: retryable.
    with pytest.raises(UnavailableError):
        await smtp_sender(port, username="portico", password="wrong").send(message())
    assert len(recorder.envelopes) == 1


# --- SMTP: TLS -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A throwaway self-signed certificate for 127.0.0.1 (made with the openssl CLI).

    Without the CLI the TLS tests skip, or fail under REQUIRE_SERVICES like a missing server.
    """
    openssl = shutil.which("openssl")
    need("the openssl command", openssl is not None)
    assert openssl is not None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Certificate(cert, key)


@pytest.mark.integration
async def test_smtp_starttls_upgrades_before_login(
    smtp_server: SmtpServer, certificate: Certificate
) -> None:
    seen_tls: list[bool] = []

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        seen_tls.append(session.ssl is not None)
        return AuthResult(success=True)

    recorder = Recorder()
    port = await smtp_server(
        recorder,
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=authenticator,
    )
    sender = smtp_sender(
        port,
        starttls=True,
        username="portico",
        password="s3cret-pass",
        tls_context=certificate.client_context(),
    )
    await sender.send(message())
    assert seen_tls == [True]
    assert len(recorder.envelopes) == 1


@pytest.mark.integration
async def test_smtp_implicit_tls_and_an_untrusted_certificate(
    smtp_server: SmtpServer, certificate: Certificate
) -> None:
    recorder = Recorder()
    port = await smtp_server(recorder, ssl=certificate.server_context())
    await smtp_sender(port, use_tls=True, tls_context=certificate.client_context()).send(message())
    assert len(recorder.envelopes) == 1
    # The system trust store does not know our certificate: refused, as unavailable.
    with pytest.raises(UnavailableError):
        await smtp_sender(port, use_tls=True, timeout=2.0).send(message())
    assert len(recorder.envelopes) == 1


@pytest.mark.integration
async def test_smtp_starttls_against_a_server_without_it_is_unavailable(
    smtp_server: SmtpServer,
) -> None:
    port = await smtp_server(Recorder())
    with pytest.raises(UnavailableError):
        await smtp_sender(port, starttls=True).send(message())


def test_smtp_sender_refuses_contradictory_settings() -> None:
    with pytest.raises(ValueError, match="not both"):
        SmtpEmailSender("localhost", 25, starttls=True, use_tls=True)
    with pytest.raises(ValueError, match="no email address"):
        SmtpEmailSender("localhost", 25, sender_address="Portico")
    with pytest.raises(ValueError, match="positive"):
        SmtpEmailSender("localhost", 25, timeout=0)
