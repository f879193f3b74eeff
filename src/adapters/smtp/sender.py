"""`EmailSender` over SMTP, with aiosmtplib (async, so no send ever blocks the loop)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import quote

import aiosmtplib

from core.notifications.errors import EmailRejectedError
from core.notifications.model import EmailMessage
from core.notifications.ports import EmailSender
from core.shared.errors import DomainError, UnavailableError

DEPENDENCY = "email"
# How long one whole delivery may take, in multiples of the per-operation timeout:
# aiosmtplib's timeout applies to each step (connect, EHLO, each command), so a server
# that answers every step just in time could otherwise hold a send for minutes.
DEADLINE_FACTOR = 3

_MSGID_SAFE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
# Longer encoded ids are replaced by their SHA-256: still stable, and the header stays
# a sensible length (idempotency keys may have 200 characters, each encoded as three).
_MAX_MSGID_LEFT = 128


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def translate_error(error: Exception) -> DomainError:
    """An aiosmtplib (or socket) failure as the core error the port promises."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
        if codes and all(_is_permanent(code) for code in codes):
            return EmailRejectedError(f"The mail server refused the recipient ({codes[0]}).")
    elif isinstance(
        error,
        aiosmtplib.SMTPAuthenticationError
        | aiosmtplib.SMTPHeloError
        | aiosmtplib.SMTPConnectResponseError,
    ):
        # Refusals of *us* (credentials, greeting), not of this message: a deployment
        # problem that every message would hit, and that goes away once it is fixed.
        pass
    elif isinstance(error, aiosmtplib.SMTPResponseException) and _is_permanent(error.code):
        return EmailRejectedError(f"The mail server refused the message ({error.code}).")
    return UnavailableError("The mail server is unavailable.", dependency=DEPENDENCY)


def message_id_header(message_id: str | None, domain: str) -> str:
    """A Message-ID header value (`<left@domain>`); the same `message_id` always gives
    the same header, so a retried delivery carries the id of the first attempt."""
    if message_id is None:
        return make_msgid(domain=domain)
    if message_id.startswith("<") and message_id.endswith(">") and "@" in message_id:
        return message_id
    # The left part must be a dot-atom: percent-encode everything else (and dots, which
    # may not lead, trail or repeat), which keeps distinct keys distinct.
    left = quote(message_id, safe="").replace(".", "%2E")
    if len(left) > _MAX_MSGID_LEFT:
        left = hashlib.sha256(message_id.encode("utf-8")).hexdigest()
    if not _MSGID_SAFE.fullmatch(left):  # pragma: no cover - quote() output is always safe
        raise ValueError("message id cannot be encoded")
    return f"<{left}@{domain}>"


class SmtpEmailSender(EmailSender):
    """`EmailSender` speaking SMTP to `host:port` (see the port for the contract).

    - One connection per message: mail is sent by background jobs at a modest rate,
      and a fresh connection never trips over a server-side idle timeout.
    - TLS: `use_tls` for implicit TLS (usually port 465), `starttls` to upgrade a plain
      connection (usually 587; fails if the server does not offer it). With neither,
      the connection stays plain: no opportunistic upgrade, so a local relay with a
      self-signed certificate keeps working. Certificates are verified against
      `tls_context` (default: the system's trust store).
    - `username`/`password` log in after TLS is up (never send them over plain text to
      anything but a local relay).
    - `timeout` bounds each network step (connect, each command); a whole delivery is
      bounded by `DEADLINE_FACTOR * timeout`.
    - The message is multipart/alternative (text, then HTML) when it has HTML, UTF-8
      with quoted-printable bodies (7-bit clean for any relay), with From, To, Subject,
      Date and Message-ID headers.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_tls: bool = False,
        timeout: float = 10.0,
        sender_address: str = "Portico <no-reply@localhost>",
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if starttls and use_tls:
            raise ValueError("use either implicit TLS (use_tls) or STARTTLS, not both")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        name, address = parseaddr(sender_address)
        if "@" not in address:
            raise ValueError(f"sender address {sender_address!r} has no email address")
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._use_tls = use_tls
        self._timeout = timeout
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._envelope_sender = address
        self._from_header = str(Address(display_name=name, addr_spec=address))
        self._domain = address.rpartition("@")[2]

    def build(self, message: EmailMessage) -> MimeMessage:
        """The MIME message that `send` transmits."""
        mime = MimeMessage()
        mime["From"] = self._from_header
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(usegmt=True)
        mime["Message-ID"] = message_id_header(message.message_id, self._domain)
        mime.set_content(message.text, charset="utf-8", cte="quoted-printable")
        if message.html is not None:
            mime.add_alternative(
                message.html, subtype="html", charset="utf-8", cte="quoted-printable"
            )
        return mime

    async def _hostname(self) -> str:
        # aiosmtplib would look this up (in a thread) on every connection; once will do.
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(self, message: EmailMessage) -> None:
        mime = self.build(message)
        try:
            async with asyncio.timeout(self._timeout * DEADLINE_FACTOR):
                await aiosmtplib.send(
                    mime,
                    sender=self._envelope_sender,
                    recipients=[message.to],
                    hostname=self._host,
                    port=self._port,
                    username=self._username,
                    password=self._password,
                    use_tls=self._use_tls,
                    start_tls=self._starttls,
                    tls_context=self._tls_context,
                    timeout=self._timeout,
                    local_hostname=await self._hostname(),
                )
        except (aiosmtplib.SMTPException, OSError) as error:
            # OSError covers our own deadline (TimeoutError), refused connections and
            # TLS failures (ssl.SSLError).
            raise translate_error(error) from error
