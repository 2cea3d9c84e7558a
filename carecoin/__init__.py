"""carecoin's client library: ``Client`` / ``AsyncClient`` for a node's HTTP API (see ``carecoin.client``)."""

from carecoin.client import DEFAULT_NODE, AsyncClient, Client
from carecoin.core import find_network_ca
from carecoin.errors import (
    ApiError, BadRequest, Conflict, Forbidden, Gone, NodeUnreachable, NotFound, PayloadTooLarge, RateLimited,
    Unauthorized, Unavailable, UntrustedCertificate, WaitTimeout,
)

__all__ = [
    "DEFAULT_NODE", "AsyncClient", "Client", "find_network_ca", "ApiError", "BadRequest", "Conflict", "Forbidden",
    "Gone", "NodeUnreachable", "NotFound", "PayloadTooLarge", "RateLimited", "Unauthorized", "Unavailable",
    "UntrustedCertificate", "WaitTimeout",
]
