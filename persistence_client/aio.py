"""The asyncio client: the same API as ``PersistenceClient``, with coroutines.

async with AsyncPersistenceClient("http://127.0.0.1:8000", api_key=KEY) as client:
    await client.persist_tasks(tasks)
    async for session in client.iter_sessions(status="processing"):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from persistence_client._core import (
    API,
    AUDIT_API,
    AUDIT_LOGS,
    BATCH_PATHS,
    SESSIONS,
    TASKS,
    USERS_API,
    ClientBase,
    Overflow,
    Record,
    RecoveredSession,
    RejectedHandler,
    RetryPolicy,
    Timeouts,
    audit_events,
    audit_params,
    connection_error,
    encode,
    error_for,
    headers,
    json_of,
    log_rejected,
    logger,
    next_delay,
    overflow_error,
    pages_done,
    query_params,
    segment,
    with_trace_context,
)
from persistence_client._files import (
    CHUNK,
    DIRECT_THRESHOLD,
    FILES,
    Source,
    chunks,
    form_fields,
    guess_type,
    multipart_header,
    opened,
    remaining_size,
    sha256_of,
)
from persistence_client.errors import NotFound, PersistenceError, ValidationFailed


class AsyncPersistenceClient(ClientBase):
    """See ``PersistenceClient``; the sender is a task on the running event loop.

    Close it (``await client.close()`` or ``async with``) before the loop ends. One left open is
    still flushed at interpreter exit, through a synchronous client, since its loop is gone by then.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_buffered: int = 10_000,
        overflow: Overflow = "block",
        block_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        on_rejected: RejectedHandler = log_rejected,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffered=max_buffered,
            overflow=overflow,
            block_timeout=block_timeout,
            retry=retry,
            timeouts=timeouts,
            on_rejected=on_rejected,
        )
        self._sleep = sleep
        self._base_url, self._api_key = base_url, api_key
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers(api_key), transport=transport
        )
        self._transport = transport  # for the store's own URLs, which never get the API key
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    # --- writes ---------------------------------------------------------------------------------
    async def persist_sessions(self, sessions: Iterable[Mapping[str, Any]]) -> None:
        await self._enqueue(SESSIONS, sessions)

    async def persist_audit_logs(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Buffer audit events (docs/api.md §9), sent like tasks; ``event_id`` and ``timestamp`` are
        filled in here when missing, so a resent batch is idempotent."""
        await self._enqueue(AUDIT_LOGS, audit_events(events))

    async def persist_tasks(self, tasks: Iterable[Mapping[str, Any]]) -> None:
        await self._enqueue(TASKS, tasks)

    async def flush(self, *, wait_for_storage: bool = True) -> dict[str, Any] | None:
        refused: ValidationFailed | None = None
        try:
            await self.send_buffered()
        except ValidationFailed as exc:
            refused = exc
        answer = None
        if wait_for_storage:
            answer = json_of(await self._call("POST", f"{API}/flush", timeout=self.timeouts.flush))
        self._raise_refusals(refused)
        return answer

    async def send_buffered(self) -> int:
        accepted = 0
        refused: ValidationFailed | None = None
        async with self._send_lock:
            while (batch := self._buffer.next_batch(self.batch_size)) is not None:
                kind, records = batch
                try:
                    await self._call(
                        "POST", BATCH_PATHS[kind], body={kind: records}, timeout=self.timeouts.write
                    )
                except ValidationFailed as exc:
                    refused = exc
                    self._refused(kind, records, exc)
                else:
                    accepted += len(records)
                    self._accepted(kind, records)
                self._buffer.remove(kind, len(records))
        if refused is not None:
            raise refused
        return accepted

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._forget()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        try:
            if self._has_sent() or self._refusals:
                await self.flush()
        finally:
            await self._http.aclose()

    def _close_at_exit(self) -> None:
        """The loop is gone: hand what is still buffered to a synchronous client, which flushes."""
        if self._closed or not self.buffered:
            return
        self._closed = True
        logger.warning("AsyncPersistenceClient was not closed; sending %d records at exit", self.buffered)
        from persistence_client.client import PersistenceClient

        fallback = PersistenceClient(
            self._base_url,
            self._api_key,
            batch_size=self.batch_size,
            max_buffered=max(self.buffered, 1),
            retry=self.retry,
            timeouts=self.timeouts,
            on_rejected=self.on_rejected,
        )
        with fallback:
            fallback.persist_sessions(self._buffer.pending[SESSIONS])
            fallback.persist_tasks(self._buffer.pending[TASKS])

    async def __aenter__(self) -> AsyncPersistenceClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            await self.close()
            return
        try:  # the block's own exception is the one to see; a failed flush on top is logged
            await self.close()
        except PersistenceError as error:
            logger.error(
                "persistence client: flush on exit failed (%s); %d records unsent", error, self.buffered
            )

    # --- queries --------------------------------------------------------------------------------
    async def get_session(self, session_id: str) -> Record:
        return await self._get(f"{API}/sessions/{segment(session_id)}")

    async def get_task(self, task_id: str) -> Record:
        return await self._get(f"{API}/tasks/{segment(task_id)}")

    def iter_sessions(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[Record]:
        return self._items(f"{API}/sessions", page_size, filters)

    def iter_tasks(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[Record]:
        return self._items(f"{API}/tasks", page_size, filters)

    def iter_session_tasks(
        self, session_id: str, *, page_size: int = 100, **filters: Any
    ) -> AsyncIterator[Record]:
        return self._items(f"{API}/sessions/{segment(session_id)}/tasks", page_size, filters)

    # --- audit logs (docs/api.md §9; scope admin) -------------------------------------------------
    async def search_audit_logs(
        self, *, order: str = "desc", page_size: int = 100, **filters: Any
    ) -> AsyncIterator[Record]:
        """Every matching event, page after page by ``next_cursor`` (see the sync client)."""
        params = audit_params(filters) | {"order": order, "page_size": str(page_size)}
        cursor: str | None = None
        while True:
            response = await self._call(
                "GET",
                f"{AUDIT_API}/logs",
                params=params | ({"cursor": cursor} if cursor else {}),
                timeout=self.timeouts.query,
            )
            page = json_of(response)
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def export_audit_logs(
        self, *, format: str = "ndjson", order: str = "asc", **filters: Any
    ) -> AsyncIterator[Any]:
        """Stream every matching event: dicts for ``ndjson``, the body's bytes for ``csv``."""
        params = audit_params(filters) | {"format": format, "order": order}
        try:
            async with self._http.stream(
                "GET", f"{AUDIT_API}/logs/export", params=params, timeout=self.timeouts.files
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response)
                if format == "csv":
                    async for chunk in response.aiter_bytes():
                        yield chunk
                    return
                async for line in response.aiter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.TransportError as exc:
            raise connection_error(exc) from exc

    async def audit_stats(self, **filters: Any) -> Record:
        response = await self._call(
            "GET", f"{AUDIT_API}/stats", params=audit_params(filters), timeout=self.timeouts.query
        )
        return json_of(response)

    async def stats(self) -> Record:
        return await self._get(f"{API}/stats")

    async def update_session_status(self, session_id: str, status: str) -> Record:
        response = await self._call(
            "PATCH",
            f"{API}/sessions/{segment(session_id)}/status",
            body={"status": status},
            timeout=self.timeouts.write,
        )
        return json_of(response)

    async def delete_session(self, session_id: str) -> Record:
        response = await self._call(
            "DELETE", f"{API}/sessions/{segment(session_id)}", timeout=self.timeouts.write
        )
        return json_of(response)

    # --- files (docs/api.md §7) --------------------------------------------------------------------
    async def upload_file(
        self,
        source: Source,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        kind: str | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_in: int | None = None,
        direct_threshold: int = DIRECT_THRESHOLD,
    ) -> Record:
        """Store a file (a path or a binary file object, read from its current position); returns
        the File. Up to ``direct_threshold`` bytes: one streamed multipart upload through the
        service; above: a direct upload to the object store (upload-url, PUT, complete)."""
        with opened(source) as (handle, name):
            filename = filename or name or "file"
            content_type = content_type or guess_type(filename)
            start, size = handle.tell(), remaining_size(handle)
            if size <= direct_threshold:
                fields = form_fields(
                    kind=kind, session_id=session_id, metadata=metadata, expires_in=expires_in
                )
                boundary = multipart_header()  # replaces the client's default JSON content type

                def multipart() -> dict[str, Any]:
                    handle.seek(start)
                    return {
                        "files": {"file": (filename, handle, content_type)},
                        "data": fields,
                        "headers": boundary,
                    }

                response = await self._call(
                    "POST", f"{FILES}/upload", timeout=self.timeouts.files, multipart=multipart
                )
                return json_of(response)
            body: dict[str, Any] = {
                "filename": filename,
                "size": size,
                "content_type": content_type,
                "sha256": sha256_of(handle),
            }
            optional = {
                "kind": kind,
                "session_id": session_id,
                "metadata": metadata,
                "expires_in": expires_in,
            }
            body.update({key: value for key, value in optional.items() if value is not None})
            started = json_of(
                await self._call("POST", f"{FILES}/upload-url", body=body, timeout=self.timeouts.write)
            )
            await self._put_bytes(started["upload"], handle, start, size)
            file_id = started["file"]["file_id"]
            return json_of(
                await self._call("POST", f"{FILES}/{segment(file_id)}/complete", timeout=self.timeouts.files)
            )

    async def file(self, file_id: str) -> Record:
        """The File (404 ``NotFound`` when unknown or expired)."""
        return await self._get(f"{FILES}/{segment(file_id)}")

    async def download_file(self, file_id: str, dest: Source) -> Record:
        """Write the file's bytes to ``dest`` (a path, written whole or not at all, or a binary
        file object) straight from the store's URL; checks the sha256; returns the File."""
        info = await self.file(file_id)
        target = json_of(
            await self._call(
                "GET",
                f"{FILES}/{segment(file_id)}/download",
                params={"redirect": "false"},
                timeout=self.timeouts.query,
            )
        )
        if isinstance(dest, (str, os.PathLike)):
            path = Path(dest)
            partial = path.with_name(path.name + ".part")
            try:
                with partial.open("wb") as handle:
                    await self._fetch_bytes(target["url"], handle, info)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
        else:
            await self._fetch_bytes(target["url"], dest, info)
        return info

    async def delete_file(self, file_id: str) -> Record:
        return json_of(await self._call("DELETE", f"{FILES}/{segment(file_id)}", timeout=self.timeouts.write))

    def iter_files(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[Record]:
        """Files, newest first. Filters: session_id, kind, status, from_date, to_date."""
        return self._items(FILES, page_size, filters)

    async def _put_bytes(self, upload: Mapping[str, Any], handle: IO[bytes], start: int, size: int) -> None:
        async def body() -> AsyncIterator[bytes]:
            handle.seek(start)
            iterator = chunks(handle, size)
            while (chunk := await asyncio.to_thread(next, iterator, None)) is not None:
                yield chunk

        request_headers = {**upload.get("headers", {}), "Content-Length": str(size)}
        async with httpx.AsyncClient(transport=self._transport) as raw:
            response = await raw.request(
                upload["method"],
                upload["url"],
                content=body(),
                headers=request_headers,
                timeout=self.timeouts.files,
            )
        if response.status_code >= 400:
            raise error_for(response)

    async def _fetch_bytes(self, url: str, handle: IO[bytes], info: Mapping[str, Any]) -> None:
        digest = hashlib.sha256()
        async with (
            httpx.AsyncClient(transport=self._transport) as raw,
            raw.stream("GET", url, timeout=self.timeouts.files) as response,
        ):
            if response.status_code >= 400:
                await response.aread()
                raise error_for(response)
            async for chunk in response.aiter_bytes(CHUNK):
                digest.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
        if digest.hexdigest() != info["sha256"]:
            raise PersistenceError(f"downloaded bytes of {info['file_id']} do not match its sha256")

    # --- users and user sessions (docs/api.md §8) ------------------------------------------------------
    async def create_user(self, user: Mapping[str, Any]) -> Record:
        """Create a user (``username`` required); ``ValidationFailed`` with status 409 when taken."""
        return json_of(await self._call("POST", USERS_API, body=dict(user), timeout=self.timeouts.write))

    async def get_user(self, user_id: str) -> Record:
        return await self._get(f"{USERS_API}/{segment(user_id)}")

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> Record:
        return json_of(
            await self._call(
                "PATCH", f"{USERS_API}/{segment(user_id)}", body=dict(changes), timeout=self.timeouts.write
            )
        )

    def iter_users(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[Record]:
        """Users by username. Filters: status, q (prefix of username or email)."""
        return self._items(USERS_API, page_size, filters)

    async def create_user_session(self, user_id: str, **fields: Any) -> Record:
        """A new session with its ``token``. Fields: ttl_seconds, ip, user_agent, data."""
        return json_of(
            await self._call(
                "POST", f"{USERS_API}/{segment(user_id)}/sessions", body=fields, timeout=self.timeouts.write
            )
        )

    async def validate_user_session(self, token: str, *, touch: bool = False) -> Record:
        """``{"session", "user"}``; ``NotFound`` for an unknown, expired or ended token."""
        body = {"token": token, "touch": touch}
        return json_of(
            await self._call("POST", f"{USERS_API}/sessions/validate", body=body, timeout=self.timeouts.query)
        )

    async def refresh_user_session(self, session_id: str) -> Record:
        return json_of(
            await self._call(
                "POST", f"{USERS_API}/sessions/{segment(session_id)}/refresh", timeout=self.timeouts.write
            )
        )

    async def end_user_session(self, session_id: str) -> Record:
        return json_of(
            await self._call(
                "DELETE", f"{USERS_API}/sessions/{segment(session_id)}", timeout=self.timeouts.write
            )
        )

    async def end_user_sessions(self, user_id: str) -> Record:
        return json_of(
            await self._call(
                "DELETE", f"{USERS_API}/{segment(user_id)}/sessions", timeout=self.timeouts.write
            )
        )

    # --- recovery -------------------------------------------------------------------------------
    async def incomplete_sessions(self) -> list[Record]:
        sessions: list[Record] = (await self._get(f"{API}/recovery/incomplete-sessions"))["sessions"]
        return sessions

    async def restore(self, session_id: str) -> Record:
        response = await self._call(
            "POST", f"{API}/recovery/restore/{segment(session_id)}", timeout=self.timeouts.restore
        )
        return json_of(response)

    async def recover(self) -> list[RecoveredSession]:
        recovered = []
        for summary in await self.incomplete_sessions():
            try:
                restored = await self.restore(summary["session_id"])
            except NotFound:
                continue  # deleted since the listing
            recovered.append(RecoveredSession(session=restored["session"], tasks=restored["tasks"]))
        return recovered

    # --- internals ------------------------------------------------------------------------------
    async def _enqueue(self, kind: str, records: Iterable[Mapping[str, Any]]) -> None:
        batch = self._records(records)
        if not batch:
            return
        self._start_sender()
        if not self._buffer.try_add(kind, batch):
            self._wake.set()
            if self.overflow == "raise":
                raise overflow_error(self._buffer.capacity)
            deadline = time.monotonic() + self.block_timeout
            while not self._buffer.try_add(kind, batch):
                if time.monotonic() >= deadline:
                    raise overflow_error(self._buffer.capacity)
                await asyncio.sleep(0.05)
        if self._buffer.full_batch_ready(self.batch_size):
            self._wake.set()

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    async def _send_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self.send_buffered()
            except ValidationFailed as exc:
                self._defer(exc)  # handed to on_rejected already; the next flush() raises it
            except PersistenceError as exc:
                logger.warning(
                    "the persistence service did not take the records; %d stay buffered: %s",
                    self.buffered,
                    exc,
                )
            except Exception:
                logger.exception("persistence client sender failed")

    async def _get(self, path: str) -> Record:
        return json_of(await self._call("GET", path, timeout=self.timeouts.query))

    async def _items(self, path: str, page_size: int, filters: Mapping[str, Any]) -> AsyncIterator[Record]:
        params = query_params(filters)
        page_number = 1
        while True:
            response = await self._call(
                "GET", path, params={**params, "page": str(page_number), "page_size": str(page_size)},
                timeout=self.timeouts.query,
            )  # fmt: skip
            page = response.json()
            for item in page["items"]:
                yield item
            if pages_done(page):
                return
            page_number += 1

    async def _call(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        multipart: Callable[[], dict[str, Any]] | None = None,
    ) -> httpx.Response:
        content = encode(body) if body is not None else None
        attempt = 0
        while True:
            attempt += 1
            self.counters.requests += 1
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                extra = multipart() if multipart is not None else {}  # the file rewound per attempt
                extra = with_trace_context(extra)
                response = await self._http.request(
                    method, path, content=content, params=params, timeout=timeout, **extra
                )
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.status_code < 400:
                return response
            delay = next_delay(self.retry, attempt, response, error)
            self.counters.retries += 1
            await self._sleep(delay)
