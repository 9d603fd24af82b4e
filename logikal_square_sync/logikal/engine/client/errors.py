"""Errors of the LogiKal client, each naming the call and the session state it failed in.

The MBIOE API's session is a server-side cursor, so the same call can be right
or wrong depending on where the session stands; an error that only says "405"
sends whoever reads it hunting. These carry the call (`POST /phases/select`),
the state (`phase of project 5ddb… in 'Demo/Sub 1'`) and the server's words.
"""

from __future__ import annotations


class LogikalError(RuntimeError):
    """Base class of everything the LogiKal client raises."""


class LogikalAuthError(LogikalError):
    """The login itself was refused (bad credentials) or a fresh token was refused at once."""


class LogikalSessionError(LogikalError):
    """A session could not be opened at all (its HTTP client could not be built: a CA bundle, a proxy
    setting); `__cause__` holds the original error."""


class LogikalApiError(LogikalError):
    """The server answered an error for a call.

    `state` describes where the session was when it made the call.
    """

    def __init__(self, call: str, status: int, state: str, server_message: str) -> None:
        self.call = call
        self.status = status
        self.state = state
        self.server_message = server_message
        super().__init__(self._describe())

    def _describe(self) -> str:
        return f"{self.call} answered {self.status} with the session in {self.state}: {self.server_message}"


class LogikalWrongStateError(LogikalApiError):
    """405: the call needs the session in another state (a planner bug, never a data problem)."""

    def _describe(self) -> str:
        return (
            f"{self.call} is not allowed with the session in {self.state} (405): {self.server_message}. "
            "The session cursor has no way back up except a new login."
        )


class LogikalConflictError(LogikalApiError):
    """409: the target is locked or in use, or the move is invalid from this state."""

    def _describe(self) -> str:
        return f"{self.call} refused (409) with the session in {self.state}: {self.server_message}"


class LogikalNotFoundError(LogikalApiError):
    """404 on a select: the directory, project, phase or elevation is gone at the source."""

    def __init__(self, call: str, status: int, state: str, server_message: str, target: str) -> None:
        self.target = target
        super().__init__(call, status, state, server_message)

    def _describe(self) -> str:
        return f"{self.target} no longer exists at the source ({self.call} answered 404 in {self.state})"


class LogikalAnswerLostError(LogikalError):
    """A select's answer was lost again and again (connection closed, timeout, cut body, a 5xx)."""


class LogikalSelectServerError(LogikalError):
    """A select answered 5xx: a gateway's 502 or 504 may come after the server applied it.

    Not a `LogikalApiError`: that one says the cursor is where it was, and here
    nobody knows. The session treats it as a lost answer (`LogikalSession._select`).
    """

    def __init__(self, call: str, status: int, server_message: str) -> None:
        self.call = call
        self.status = status
        super().__init__(f"{call} answered {status}: {server_message}")


class LogikalResponseError(LogikalError):
    """A response that does not follow the API's contract (envelope, fields, encoding)."""
