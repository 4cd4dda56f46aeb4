"""The engine's one exception hierarchy.

Managers and primitives raise these; the HTTP error middleware maps each class
to Docker's status code and the body ``{"message", "code", "details"}``.
``message`` is what the docker CLI prints, so it must read well on its own.
"""

from __future__ import annotations

from typing import Any


class ServinError(Exception):
    """Base of every error the engine reports to clients."""

    status: int = 500
    code: str = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidArgument(ServinError):
    status = 400
    code = "INVALID_ARGUMENT"


class Unauthorized(ServinError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(ServinError):
    status = 403
    code = "FORBIDDEN"


class NotFound(ServinError):
    status = 404
    code = "NOT_FOUND"


class NotModified(ServinError):
    """Docker answers 304 when a container is already in the asked state."""

    status = 304
    code = "NOT_MODIFIED"


class Conflict(ServinError):
    status = 409
    code = "CONFLICT"


class NotSupported(ServinError):
    """What the container's configuration rules out (dockerd's NotImplemented, 501)."""

    status = 501
    code = "NOT_IMPLEMENTED"


class Unavailable(ServinError):
    status = 503
    code = "UNAVAILABLE"


class SystemFailure(ServinError):
    """An operation of the host failed (runc, mount, registry I/O...)."""

    status = 500
    code = "SYSTEM"
