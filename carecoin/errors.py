"""The client's errors: ONE hierarchy, ``ApiError(status, code, message)``.

Every answer of a node that is not a success becomes the ``ApiError`` subclass of its HTTP status, with the
node's error ``code`` and ``message`` (``{"error": {"code", "message"}}``). A node that cannot be reached is
``NodeUnreachable`` (status 0), a certificate not trusted is ``UntrustedCertificate``, a wait that ran out is
``WaitTimeout``.
"""

from __future__ import annotations


class ApiError(Exception):
    """A request that did not succeed: ``status`` (HTTP, 0 when no answer), ``code`` (snake_case), ``message``."""

    def __init__(self, status: int, code: str, message: str, *, url: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.url, self.retry_after = url, retry_after

    def __str__(self) -> str:
        suffix = f" (retry after {self.retry_after:g} s)" if self.retry_after is not None else ""
        if self.status == 0:
            return f"{self.message}{suffix}"
        return f"node answered {self.status}: {self.code}: {self.message}{suffix}"


class BadRequest(ApiError):
    """400: the request is malformed (the message says what was seen and what was expected)."""


class Unauthorized(ApiError):
    """401: unsigned, bad signature, stale or replayed."""


class Forbidden(ApiError):
    """403: signed, but the signer is not entitled (the message says why)."""


class NotFound(ApiError):
    """404: no such tx, block, ticket, order, proposal, customer or text."""


class Conflict(ApiError):
    """409: the request contradicts what the node holds (a nonce already used, a commitment that does not open)."""


class Gone(ApiError):
    """410: the customer's personal data was erased."""


class PayloadTooLarge(ApiError):
    """413: the body is larger than the node accepts."""


class RateLimited(ApiError):
    """429: the mempool or the sender's share of it is full; ``retry_after`` seconds."""


class Unavailable(ApiError):
    """503: the node cannot serve this now (no analytics, vault off, catching up)."""


class NodeUnreachable(ApiError):
    """No answer at all: connection refused, timeout, DNS, TLS handshake."""


class UntrustedCertificate(NodeUnreachable):
    """The node's certificate does not chain to the trusted CA."""


class WaitTimeout(ApiError):
    """A tx was still pending (or unknown) when the wait ran out."""


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone,
    413: PayloadTooLarge, 429: RateLimited, 503: Unavailable,
}


def error_for(status: int, code: str, message: str, *, url: str = "", retry_after: float | None = None) -> ApiError:
    """The ``ApiError`` subclass of ``status`` (``ApiError`` itself for a status without its own class)."""
    return BY_STATUS.get(status, ApiError)(status, code, message, url=url, retry_after=retry_after)
