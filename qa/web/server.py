"""`qa serve`: build the index if missing, load everything, then serve with waitress.

One process, a pool of threads sharing one model and one open index. Waitress reads whole
requests asynchronously before a worker thread sees them, so a slow client costs a socket, not
a thread; idle connections are closed after `CHANNEL_TIMEOUT` seconds.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from qa.ask.service import QAService
from qa.index import builds
from qa.model import Embedder
from qa.settings import Settings

CHANNEL_TIMEOUT = 30  # seconds an idle or stalled connection may stay open
CONNECTION_LIMIT = 200
# Waitress refuses (with its own plain-text 413) bodies past this; the app's JSON 413 answers
# everything between the API's 16 KiB limit and this.
MAX_REQUEST_BODY = 1024 * 1024
MAX_REQUEST_HEADERS = 32 * 1024


def _progress_printer(err: TextIO) -> Callable[[str, int, int], None]:
    shown: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        # A line per quarter, not a bar: readable in a terminal and in a service's log alike.
        quarter = 4 if total == 0 else (4 * done) // total
        if shown.get(stage) != quarter:
            shown[stage] = quarter
            print(f"  {stage}: {done}/{total}", file=err, flush=True)

    return progress


def prepare(
    settings: Settings, embedder: Embedder | None = None, err: TextIO = sys.stderr
) -> tuple[QAService, dict[str, Any]]:
    """A ready service: the index built if none is published, the model and index loaded.

    Raises IndexUnavailable when the index cannot be built or opened.
    """
    service = QAService(settings, embedder)
    if builds.current_build_id_or_none(settings.index_dir) is None:
        from qa.index.build import build_index

        print(
            f"No index in {settings.index_dir}: building one from {settings.seeds_dir}",
            file=err,
            flush=True,
        )
        report = build_index(
            settings.seeds_dir,
            settings.index_dir,
            service.embedder,
            chroma_url=settings.chroma_url,
            progress=_progress_printer(err),
        )
        print(
            f"Built {report.build_id}: {report.passages} passages in {report.seconds:.1f} s",
            file=err,
            flush=True,
        )
    print("Loading the model and the index", file=err, flush=True)
    facts = service.ready()
    service.embedder.encode(["warm-up"])  # the first encode initialises the runtime
    return service, facts


def create_server(app: Any, settings: Settings) -> Any:
    """A bound (not yet running) waitress server for `app`."""
    from waitress.server import create_server as waitress_server

    return waitress_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        channel_timeout=CHANNEL_TIMEOUT,
        connection_limit=CONNECTION_LIMIT,
        cleanup_interval=10,
        max_request_body_size=MAX_REQUEST_BODY,
        max_request_header_size=MAX_REQUEST_HEADERS,
        ident="qa",
    )


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
    """Run the server until Ctrl-C or SIGTERM. Raises IndexUnavailable when not servable."""
    from qa.web.app import create_app

    service, facts = prepare(settings, embedder, err)
    print(
        f"Build {facts['build']}: {facts['documents']} documents, {facts['passages']} passages, "
        f"model {facts['model']}",
        file=err,
        flush=True,
    )
    server = create_server(create_app(settings, service), settings)

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
