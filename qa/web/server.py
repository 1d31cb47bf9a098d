"""`qa serve`: build the index if missing, load everything, then serve with waitress.

One process, a pool of threads sharing one model and one open index. Waitress reads whole
requests asynchronously before a worker thread sees them, so a slow client costs a socket, not
a thread. Three rules keep slow or idle clients from locking anyone out (issue 14):

- every connection must deliver each whole request within `REQUEST_DEADLINE` seconds of being
  ready for it (opened, or its previous answer sent): a trickle of bytes does not reset the
  clock. A partial request past the deadline gets a 408; an idle connection is closed;
- up to `CONNECTION_LIMIT` connections are open at once (well above the thread count, polled
  with poll(2), not select(2)); at the limit the connections that have waited longest for a
  whole request are closed first, so a new client always gets in;
- an answer that the client does not read is dropped after `CHANNEL_TIMEOUT` s without progress.

Errors that waitress writes itself (400, 408, 413, 431, 501, and a 500 if the app ever fails
before answering) carry the app's security headers and the one JSON error shape.
"""

from __future__ import annotations

import errno
import json
import logging
import resource
import signal
import sys
import time
from typing import Any, TextIO

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import Error

from qa.ask.service import QAService
from qa.errors import PortUnavailable
from qa.index import builds
from qa.model import Embedder
from qa.settings import Settings
from qa.web.app import SECURITY_HEADERS, log_access

REQUEST_DEADLINE = 10  # seconds to deliver a whole request, from open or from the last answer
CHANNEL_TIMEOUT = 30  # seconds an answer may wait for a client that does not read it
CONNECTION_LIMIT = 1000
SHED_SHARE = 20  # at the limit, close 1/SHED_SHARE of it (the longest-waiting) at once
# Waitress refuses (with the JSON 413 below) bodies past this; the app's JSON 413 answers
# everything between the API's 16 KiB limit and this.
MAX_REQUEST_BODY = 1024 * 1024
MAX_REQUEST_HEADERS = 32 * 1024
log = logging.getLogger(__name__)


class RequestTimeout(Error):
    """A request not received in full within REQUEST_DEADLINE."""

    code = 408
    reason = "Request Timeout"


# waitress's error kind -> (code, the message a client reads)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is not valid HTTP/1.1 ({detail}); fix the request"),
    408: (
        "request_timeout",
        f"the request was not received in full within {REQUEST_DEADLINE} s; send it again",
    ),
    413: (
        "too_large",
        f"the body is larger than {MAX_REQUEST_BODY} bytes; send a shorter request",
    ),
    431: (
        "headers_too_large",
        f"the request headers are larger than {MAX_REQUEST_HEADERS} bytes; send fewer or "
        "shorter headers",
    ),
    501: (
        "not_implemented",
        "that Transfer-Encoding is not supported; send the body with Content-Length or chunked",
    ),
    500: ("internal_error", "the server failed; this is a bug"),
}


class _ErrorTask(ErrorTask):
    """Waitress's own error answers, in the app's error shape and with its security headers."""

    def execute(self) -> None:
        e = self.request.error
        code, message = _ERRORS.get(e.code, (e.reason.lower().replace(" ", "_"), "{detail}"))
        detail = str(e.body).splitlines()[0][:200].rstrip(".") if e.code == 400 else e.reason
        body = json.dumps({"error": {"code": code, "message": message.format(detail=detail)}})
        self.status = f"{e.code} {e.reason}"
        self.response_headers.extend(
            [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                *SECURITY_HEADERS.items(),
            ]
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        # The app never sees this request, so its line in the access log is written here. A
        # 431's request line was never read (waitress fills in "GET /"): it is not shown.
        read = e.code != 431
        log_access(
            self.channel.addr[0] if self.channel.addr else "-",
            (getattr(self.request, "command", "") if read else "") or "-",
            (getattr(self.request, "path", "") if read else "") or "-",
            e.code,
            None,
        )
        self.write(body.encode())


class _Channel(HTTPChannel):
    """A connection with a deadline for each whole request (see the module's docstring)."""

    error_task_class = _ErrorTask

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready_since = self.creation_time  # when it became ready for its next request

    def service(self) -> None:  # a worker thread
        super().service()
        self.ready_since = time.time()

    def waiting(self) -> bool:
        """Waiting for (the rest of) a request: nothing being served, sent, or closed."""
        return not (
            self.requests or self.total_outbufs_len or self.will_close or self.close_when_flushed
        )

    def expire(self) -> None:
        """Close it: with a 408 when it was halfway through a request, silently when idle."""
        partial = self.request
        if partial is None or not self.connected:
            self.will_close = True
            return
        self.request = None
        partial.error = RequestTimeout(f"not received within {REQUEST_DEADLINE} s")
        task = self.error_task_class(self, partial)
        try:
            task.service()  # a few hundred bytes into the out buffer; never blocks
        except Exception:  # the client is gone
            self.will_close = True
        self.close_when_flushed = True


class _Server(TcpWSGIServer):
    """Waitress's TCP server with `_Channel`, the request deadline and shedding at the limit."""

    channel_class = _Channel
    _last_shed_log = 0.0

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # answers not read for CHANNEL_TIMEOUT s
        cutoff = now - REQUEST_DEADLINE
        for channel in list(self.active_channels.values()):
            if isinstance(channel, _Channel) and channel.waiting() and channel.ready_since < cutoff:
                channel.expire()

    def readable(self) -> bool:
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        if not self.accepting:
            return False
        if len(self._map) < self.adj.connection_limit:
            return True
        self._shed(now)
        return False  # accept again once the shed connections are closed (next loop pass)

    def _shed(self, now: float) -> None:
        channels = [c for c in self.active_channels.values() if isinstance(c, _Channel)]
        closing = sum(1 for c in channels if c.will_close or c.close_when_flushed)
        if len(self._map) - closing < self.adj.connection_limit:
            return  # the connections already on their way out make the room
        waiting = sorted((c for c in channels if c.waiting()), key=lambda c: c.ready_since)
        batch = waiting[: max(1, self.adj.connection_limit // SHED_SHARE)]
        for channel in batch:
            channel.expire()
        if batch and now - self._last_shed_log > 60:
            self._last_shed_log = now
            log.warning(
                "%d connections open (the limit): closed the %d that waited longest for a "
                "whole request",
                len(channels),
                len(batch),
            )


def prepare(
    settings: Settings,
    embedder: Embedder | None = None,
    err: TextIO = sys.stderr,
    service: QAService | None = None,
) -> tuple[QAService, dict[str, Any]]:
    """A ready service (`service`, or a new one): the index built if none is published, the
    model and index loaded.

    Raises IndexUnavailable when the index cannot be built or opened.
    """
    if service is None:
        service = QAService(settings, embedder)
    if builds.current_build_id_or_none(settings.index_dir) is None:
        from qa.index.build import build_index, progress_lines

        print(
            f"No index in {settings.index_dir.resolve()} yet: building one from the articles in "
            f"{settings.seeds_dir.resolve()}",
            file=err,
            flush=True,
        )
        report = build_index(
            settings.seeds_dir,
            settings.index_dir,
            service.embedder,
            chroma_url=settings.chroma_url,
            progress=progress_lines(err),
        )
        print(
            f"Built {report.build_id}: {report.passages} passages in {report.seconds:.1f} s",
            file=err,
            flush=True,
        )
    print("Loading the model and the index", file=err, flush=True)
    facts = service.ready()
    service.embedder.encode(["warm-up"])  # the first encode initialises the runtime
    service.ranker().warm()  # and the cross-encoder, which re-reads the unsure questions
    return service, facts


class _DeepQueue(logging.Filter):
    """Passes waitress's "Task queue depth is N" only when N exceeds `threads`."""

    def __init__(self, threads: int) -> None:
        super().__init__()
        self.threads = threads

    def filter(self, record: logging.LogRecord) -> bool:
        depth = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not isinstance(depth, int) or depth > self.threads


def _log_to(err: TextIO, threads: int) -> None:
    """The server's log on `err`: a line per request and this project's notices (INFO); the
    libraries' warnings and errors only. Left alone when the process configured logging."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    # A page load asks for its five files at once: a queue a few tasks deep is normal, and the
    # access log shows the wait. Only a queue deeper than the thread count is worth a line.
    logging.getLogger("waitress.queue").addFilter(_DeepQueue(threads))
    root.setLevel(logging.WARNING)
    logging.getLogger("qa").setLevel(logging.INFO)


def create_server(app: Any, settings: Settings, connection_limit: int = CONNECTION_LIMIT) -> Any:
    """A bound (not yet running) waitress server for `app`."""
    adj = Adjustments(
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        channel_timeout=CHANNEL_TIMEOUT,
        connection_limit=_fit_open_files(connection_limit),
        cleanup_interval=1,
        asyncore_use_poll=True,  # select(2) fails past 1,024 descriptors
        max_request_body_size=MAX_REQUEST_BODY,
        max_request_header_size=MAX_REQUEST_HEADERS,
        ident="qa",
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    socket_map: dict[int, Any] = {}
    servers = [
        _Server(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=info)
        for info in adj.listen
    ]
    if len(servers) == 1:
        return servers[0]
    listen = [(s.effective_host, s.effective_port) for s in servers]
    return MultiSocketServer(socket_map, adj, listen, dispatcher, servers[-1].log_info)


def _fit_open_files(connections: int) -> int:
    """Raise the soft limit on open files so `connections` fit (beside the index's own files,
    about 256); a smaller limit where the hard one does not allow it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (OSError, ValueError):
            pass
        return max(16, min(connections, soft - 256))
    return connections


def _cannot_listen(settings: Settings, exc: Exception) -> str:
    """What to change when the server cannot listen on its address, by the kind of failure."""
    where = f"cannot listen on {settings.host}:{settings.port}"
    port = "choose another port with --port or QA_PORT"
    code = getattr(exc, "errno", None)
    if code == errno.EADDRINUSE:
        return f"{where} (it is in use); stop what uses it or {port}"
    if code == errno.EACCES:
        return f"{where} (permission denied: ports under 1024 need privileges); {port}"
    if isinstance(exc, ValueError) or code in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        host = "choose another host with --host or QA_HOST"
        return f"{where} (no such address on this machine); {host}"
    reason = getattr(exc, "strerror", None) or exc
    return f"{where} ({reason}); check --host and --port (QA_HOST, QA_PORT)"


def url_of(server: Any) -> str:
    """The address a person can open: http://host:port/."""
    if hasattr(server, "effective_port"):
        host, port = server.effective_host, server.effective_port
    else:  # a name such as `localhost` binds one socket per address
        host, port = server.effective_listen[0][:2]
    if isinstance(host, str) and ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def serve(
    settings: Settings,
    embedder: Embedder | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run the server until Ctrl-C or SIGTERM. Raises IndexUnavailable when not servable and
    PortUnavailable when it cannot listen."""
    from qa.web.app import create_app

    _log_to(err, settings.threads)
    service = QAService(settings, embedder)
    # Listen first: a port in use fails in a second, not after a build. Until `run`, the
    # kernel holds new connections in the listen backlog; they are answered once loaded.
    try:
        server = create_server(create_app(settings, service), settings)
    except (OSError, ValueError) as exc:  # waitress: ValueError for a host it cannot resolve
        raise PortUnavailable(_cannot_listen(settings, exc)) from exc
    try:
        _, facts = prepare(settings, err=err, service=service)
    except BaseException:
        server.close()
        server.task_dispatcher.shutdown(timeout=1)
        raise
    print(
        f"Build {facts['build']}: {facts['documents']} documents, {facts['passages']} passages, "
        f"model {facts['model']}",
        file=err,
        flush=True,
    )

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    print(f"Serving on {url_of(server)} (Ctrl-C to stop)", file=out, flush=True)
    try:
        server.run()  # returns after Ctrl-C, once the worker threads are stopped
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        signal.signal(signal.SIGTERM, previous)
    print("Stopped.", file=err, flush=True)
    return 0
