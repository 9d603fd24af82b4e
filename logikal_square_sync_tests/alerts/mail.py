"""A stand-in mail server's mailbox (an aiosmtpd handler) and the certificate its STARTTLS offers."""

from __future__ import annotations

import email
import email.policy
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-Pa55word-never-logged"


@dataclass
class Mailbox:
    host: str
    port: int
    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)  # per envelope: did it arrive over TLS

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(content, policy=email.policy.default) for _, _, content in self.envelopes
        ]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd hook name)
        assert envelope.mail_from is not None and isinstance(envelope.content, bytes)  # aiosmtpd's defaults
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.encrypted.append(session.ssl is not None)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        """aiosmtpd's authenticator: SMTP_USER with SMTP_PASSWORD, and nobody else, may log in."""
        # handled=False: let aiosmtpd answer "535 credentials invalid" itself.
        if not (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        ):
            return AuthResult(success=False, handled=False)
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=True, handled=False)


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))
