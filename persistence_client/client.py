"""The synchronous client. See README.md in this directory.

with PersistenceClient("http://127.0.0.1:8000", api_key=KEY) as client:
    client.persist_sessions([session])          # buffered; sent in batches of 100 or every second
    client.persist_tasks(tasks)
    client.flush()                              # send everything now and have the service store it
    for session in client.recover():            # after a crash: what to resume
        ...
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
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


class PersistenceClient(ClientBase):
    """A client of the Persistence Service that buffers writes and retries what can be retried.

    Writes (``persist_sessions``, ``persist_tasks``) go to a local buffer and return at once; a
    background thread sends them in batches of ``batch_size`` as soon as a batch is full and at
    least every ``flush_interval`` seconds, sessions before tasks. The buffer holds at most
    ``max_buffered`` records: past that, ``overflow="block"`` waits up to ``block_timeout`` seconds
    for room, ``"raise"`` raises ``BufferFull`` at once. Records the service refuses for good
    (validation) are dropped and handed to ``on_rejected`` (default: logged); the next ``flush()``
    raises ``ValidationFailed`` for them, also for batches the background thread sent. Connection
    errors, timeouts, 429 and 5xx are retried per ``retry`` and, failing that, the records stay
    buffered for the next round. ``close()``, leaving a ``with`` block and interpreter exit flush.
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
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
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
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers(api_key), transport=transport
        )
        self._transport = transport  # for the store's own URLs, which never get the API key
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender: threading.Thread | None = None
        self._sender_lock = threading.Lock()

    # --- writes ---------------------------------------------------------------------------------
    def persist_sessions(self, sessions: Iterable[Mapping[str, Any]]) -> None:
        """Buffer whole session records (upserts by session_id; the last accepted write wins)."""
        self._enqueue(SESSIONS, sessions)

    def persist_tasks(self, tasks: Iterable[Mapping[str, Any]]) -> None:
        """Buffer whole task records; their sessions must have been persisted (by anyone) first."""
        self._enqueue(TASKS, tasks)

    def persist_audit_logs(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Buffer audit events (docs/api.md §9), sent like tasks (batched, retried, flushed on close).
        An event without ``event_id`` or ``timestamp`` gets them here (a UUID4, now in UTC), so a
        resent batch is idempotent: the service keeps the first version of each event_id."""
        self._enqueue(AUDIT_LOGS, audit_events(events))

    def flush(self, *, wait_for_storage: bool = True) -> dict[str, Any] | None:
        """Send every buffered record now; then, with ``wait_for_storage``, have the service write
        its buffer to the database (POST /flush) and return its answer.

        Raises ``ValidationFailed`` if the service refused records since the last flush (in this
        call or in the background; the accepted ones are still sent and stored first), and
        ``Unavailable`` if it could not be reached (the records stay buffered)."""
        refused: ValidationFailed | None = None
        try:
            self.send_buffered()
        except ValidationFailed as exc:
            refused = exc
        answer = None
        if wait_for_storage:
            answer = json_of(self._call("POST", f"{API}/flush", timeout=self.timeouts.flush))
        self._raise_refusals(refused)
        return answer

    def send_buffered(self) -> int:
        """Send every buffered record (sessions first) in batches; returns how many were accepted."""
        accepted = 0
        refused: ValidationFailed | None = None
        with self._send_lock:
            while (batch := self._buffer.next_batch(self.batch_size)) is not None:
                kind, records = batch
                try:
                    self._call("POST", BATCH_PATHS[kind], body={kind: records}, timeout=self.timeouts.write)
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

    def close(self) -> None:
        """Stop the background sender and flush (send, then POST /flush). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._forget()
        self._stop.set()
        self._wake.set()
        if self._sender is not None:
            self._sender.join(timeout=self.timeouts.flush)
        try:
            if self._has_sent() or self._refusals:
                self.flush()
        finally:
            self._http.close()

    def _close_at_exit(self) -> None:
        self.close()

    def __enter__(self) -> PersistenceClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        try:  # the block's own exception is the one to see; a failed flush on top is logged
            self.close()
        except PersistenceError as error:
            logger.error(
                "persistence client: flush on exit failed (%s); %d records unsent", error, self.buffered
            )

    # --- queries --------------------------------------------------------------------------------
    def get_session(self, session_id: str) -> Record:
        """The session with pending_tasks, progress, estimated_completion (unflushed writes included)."""
        return self._get(f"{API}/sessions/{segment(session_id)}")

    def get_task(self, task_id: str) -> Record:
        return self._get(f"{API}/tasks/{segment(task_id)}")

    def iter_sessions(self, *, page_size: int = 100, **filters: Any) -> Iterator[Record]:
        """Session summaries, page after page. Filters: status, llm_provider, from_date, to_date,
        sort_by, order."""
        return self._items(f"{API}/sessions", page_size, filters)

    def iter_tasks(self, *, page_size: int = 100, **filters: Any) -> Iterator[Record]:
        """Tasks by task_id. Filters: session_id, status, batch_id, from_date, to_date."""
        return self._items(f"{API}/tasks", page_size, filters)

    def iter_session_tasks(
        self, session_id: str, *, page_size: int = 100, **filters: Any
    ) -> Iterator[Record]:
        """A session's tasks by row_index. Filters: status, sheet_name."""
        return self._items(f"{API}/sessions/{segment(session_id)}/tasks", page_size, filters)

    def stats(self) -> Record:
        return self._get(f"{API}/stats")

    def update_session_status(self, session_id: str, status: str) -> Record:
        response = self._call(
            "PATCH",
            f"{API}/sessions/{segment(session_id)}/status",
            body={"status": status},
            timeout=self.timeouts.write,
        )
        return json_of(response)

    def delete_session(self, session_id: str) -> Record:
        return json_of(
            self._call("DELETE", f"{API}/sessions/{segment(session_id)}", timeout=self.timeouts.write)
        )

    # --- audit logs (docs/api.md §9; scope admin) -------------------------------------------------
    def search_audit_logs(
        self, *, order: str = "desc", page_size: int = 100, **filters: Any
    ) -> Iterator[Record]:
        """Every matching event, page after page by ``next_cursor`` (no 10,000 cap). Filters:
        actor_id, actor_type, action (exact or ``"session.*"``), resource_type, resource_id,
        outcome, from_ and to (datetimes or ISO strings), q (full text)."""
        params = audit_params(filters) | {"order": order, "page_size": str(page_size)}
        cursor: str | None = None
        while True:
            page = json_of(
                self._call(
                    "GET",
                    f"{AUDIT_API}/logs",
                    params=params | ({"cursor": cursor} if cursor else {}),
                    timeout=self.timeouts.query,
                )
            )
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def export_audit_logs(
        self, *, format: str = "ndjson", order: str = "asc", **filters: Any
    ) -> Iterator[Any]:
        """Stream every matching event: ``ndjson`` yields one dict per event, ``csv`` the body's
        bytes as they arrive. Memory stays flat; a broken stream raises ``Unavailable`` (start
        again, or narrow with ``from_``: the export is ordered by timestamp)."""
        params = audit_params(filters) | {"format": format, "order": order}
        try:
            with self._http.stream(
                "GET", f"{AUDIT_API}/logs/export", params=params, timeout=self.timeouts.files
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_for(response)
                if format == "csv":
                    yield from response.iter_bytes()
                    return
                for line in response.iter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.TransportError as exc:
            raise connection_error(exc) from exc

    def audit_stats(self, **filters: Any) -> Record:
        """``{"total", "by_action", "by_outcome", "by_actor", "per_day"}`` over the matches."""
        return json_of(
            self._call("GET", f"{AUDIT_API}/stats", params=audit_params(filters), timeout=self.timeouts.query)
        )

    # --- files (docs/api.md §7) --------------------------------------------------------------------
    def upload_file(
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

                response = self._call(
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
                self._call("POST", f"{FILES}/upload-url", body=body, timeout=self.timeouts.write)
            )
            self._put_bytes(started["upload"], handle, start, size)
            file_id = started["file"]["file_id"]
            return json_of(
                self._call("POST", f"{FILES}/{segment(file_id)}/complete", timeout=self.timeouts.files)
            )

    def file(self, file_id: str) -> Record:
        """The File (404 ``NotFound`` when unknown or expired)."""
        return self._get(f"{FILES}/{segment(file_id)}")

    def download_file(self, file_id: str, dest: Source) -> Record:
        """Write the file's bytes to ``dest`` (a path, written whole or not at all, or a binary
        file object) straight from the store's URL; checks the sha256; returns the File."""
        info = self.file(file_id)
        target = json_of(
            self._call(
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
                    self._fetch_bytes(target["url"], handle, info)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
        else:
            self._fetch_bytes(target["url"], dest, info)
        return info

    def delete_file(self, file_id: str) -> Record:
        return json_of(self._call("DELETE", f"{FILES}/{segment(file_id)}", timeout=self.timeouts.write))

    def iter_files(self, *, page_size: int = 100, **filters: Any) -> Iterator[Record]:
        """Files, newest first. Filters: session_id, kind, status, from_date, to_date."""
        return self._items(FILES, page_size, filters)

    def _put_bytes(self, upload: Mapping[str, Any], handle: IO[bytes], start: int, size: int) -> None:
        handle.seek(start)
        request_headers = {**upload.get("headers", {}), "Content-Length": str(size)}
        with httpx.Client(transport=self._transport) as raw:
            response = raw.request(
                upload["method"],
                upload["url"],
                content=chunks(handle, size),
                headers=request_headers,
                timeout=self.timeouts.files,
            )
        if response.status_code >= 400:
            raise error_for(response)

    def _fetch_bytes(self, url: str, handle: IO[bytes], info: Mapping[str, Any]) -> None:
        digest = hashlib.sha256()
        with (
            httpx.Client(transport=self._transport) as raw,
            raw.stream("GET", url, timeout=self.timeouts.files) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            for chunk in response.iter_bytes(CHUNK):
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != info["sha256"]:
            raise PersistenceError(f"downloaded bytes of {info['file_id']} do not match its sha256")

    # --- users and user sessions (docs/api.md §8) ------------------------------------------------------
    def create_user(self, user: Mapping[str, Any]) -> Record:
        """Create a user (``username`` required); ``ValidationFailed`` with status 409 when taken."""
        return json_of(self._call("POST", USERS_API, body=dict(user), timeout=self.timeouts.write))

    def get_user(self, user_id: str) -> Record:
        return self._get(f"{USERS_API}/{segment(user_id)}")

    def update_user(self, user_id: str, changes: Mapping[str, Any]) -> Record:
        return json_of(
            self._call(
                "PATCH", f"{USERS_API}/{segment(user_id)}", body=dict(changes), timeout=self.timeouts.write
            )
        )

    def iter_users(self, *, page_size: int = 100, **filters: Any) -> Iterator[Record]:
        """Users by username. Filters: status, q (prefix of username or email)."""
        return self._items(USERS_API, page_size, filters)

    def create_user_session(self, user_id: str, **fields: Any) -> Record:
        """A new session with its ``token``. Fields: ttl_seconds, ip, user_agent, data."""
        return json_of(
            self._call(
                "POST", f"{USERS_API}/{segment(user_id)}/sessions", body=fields, timeout=self.timeouts.write
            )
        )

    def validate_user_session(self, token: str, *, touch: bool = False) -> Record:
        """``{"session", "user"}``; ``NotFound`` for an unknown, expired or ended token."""
        body = {"token": token, "touch": touch}
        return json_of(
            self._call("POST", f"{USERS_API}/sessions/validate", body=body, timeout=self.timeouts.query)
        )

    def refresh_user_session(self, session_id: str) -> Record:
        return json_of(
            self._call(
                "POST", f"{USERS_API}/sessions/{segment(session_id)}/refresh", timeout=self.timeouts.write
            )
        )

    def end_user_session(self, session_id: str) -> Record:
        return json_of(
            self._call("DELETE", f"{USERS_API}/sessions/{segment(session_id)}", timeout=self.timeouts.write)
        )

    def end_user_sessions(self, user_id: str) -> Record:
        return json_of(
            self._call("DELETE", f"{USERS_API}/{segment(user_id)}/sessions", timeout=self.timeouts.write)
        )

    # --- recovery -------------------------------------------------------------------------------
    def incomplete_sessions(self) -> list[Record]:
        sessions: list[Record] = self._get(f"{API}/recovery/incomplete-sessions")["sessions"]
        return sessions

    def restore(self, session_id: str) -> Record:
        """The session and every pending or processing task of it."""
        return json_of(
            self._call("POST", f"{API}/recovery/restore/{segment(session_id)}", timeout=self.timeouts.restore)
        )

    def recover(self) -> list[RecoveredSession]:
        """Every incomplete session (pending or processing), newest first, with the tasks to redo.

        A session deleted between the listing and its restore is left out."""
        recovered = []
        for summary in self.incomplete_sessions():
            try:
                restored = self.restore(summary["session_id"])
            except NotFound:
                continue
            recovered.append(RecoveredSession(session=restored["session"], tasks=restored["tasks"]))
        return recovered

    # --- internals ------------------------------------------------------------------------------
    def _enqueue(self, kind: str, records: Iterable[Mapping[str, Any]]) -> None:
        batch = self._records(records)
        if not batch:
            return
        if not self._buffer.try_add(kind, batch):
            self._wake.set()  # make room: send now
            if self.overflow == "raise" or not self._buffer.add_blocking(kind, batch, self.block_timeout):
                raise overflow_error(self._buffer.capacity)
        self._start_sender()
        if self._buffer.full_batch_ready(self.batch_size):
            self._wake.set()

    def _start_sender(self) -> None:
        with self._sender_lock:  # two first writers from two threads: still one sender
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_loop, name="persistence-client", daemon=True
                )
                self._sender.start()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.send_buffered()
            except ValidationFailed as exc:
                self._defer(exc)  # handed to on_rejected already; the next flush() raises it
            except PersistenceError as exc:
                logger.warning(
                    "the persistence service did not take the records; %d stay buffered: %s",
                    self.buffered,
                    exc,
                )
            except Exception:  # never let the sender die
                logger.exception("persistence client sender failed")

    def _get(self, path: str) -> Record:
        return json_of(self._call("GET", path, timeout=self.timeouts.query))

    def _items(self, path: str, page_size: int, filters: Mapping[str, Any]) -> Iterator[Record]:
        params = query_params(filters)
        page_number = 1
        while True:
            page = self._call(
                "GET", path, params={**params, "page": str(page_number), "page_size": str(page_size)},
                timeout=self.timeouts.query,
            ).json()  # fmt: skip
            yield from page["items"]
            if pages_done(page):
                return
            page_number += 1

    def _call(
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
                response = self._http.request(
                    method, path, content=content, params=params, timeout=timeout, **extra
                )
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.status_code < 400:
                return response
            delay = next_delay(self.retry, attempt, response, error)
            self.counters.retries += 1
            self._sleep(delay)
