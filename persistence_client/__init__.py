"""Python client of the Persistence Service (sync and asyncio). See README.md in this directory."""

from persistence_client._core import ClientStats, RecoveredSession, RetryPolicy, Timeouts
from persistence_client.aio import AsyncPersistenceClient
from persistence_client.client import PersistenceClient
from persistence_client.errors import (
    AuthError,
    BufferFull,
    Conflict,
    NotFound,
    PersistenceError,
    Throttled,
    Unavailable,
    ValidationFailed,
)

__version__ = "1.0.0"
__all__ = [
    "AsyncPersistenceClient",
    "AuthError",
    "BufferFull",
    "ClientStats",
    "Conflict",
    "NotFound",
    "PersistenceClient",
    "PersistenceError",
    "RecoveredSession",
    "RetryPolicy",
    "Throttled",
    "Timeouts",
    "Unavailable",
    "ValidationFailed",
]
