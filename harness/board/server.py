"""The board served for the length of a live drill: a threaded Werkzeug server on 127.0.0.1 (a port
of the user's choosing, 0: a free one), in the drill's own process. `stop()` is safe to call twice
and from any exit path of the run."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from werkzeug.serving import WSGIRequestHandler, make_server

from ..clock import DrillClock
from ..journal import Journal
from .app import create_app
from .feed import BoardFeed

HOST = "127.0.0.1"  # loopback only, whatever the port


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass  # a poll a second from every phone: the drill's console is for the drill


class BoardServer:
    def __init__(self, app, port: int = 0):
        self._server = make_server(HOST, port, app, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://{HOST}:{self.port}/"
        self._thread: threading.Thread | None = None

    def start(self) -> "BoardServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="board")
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._server.shutdown()
        self._thread.join(timeout)
        self._server.server_close()
        self._thread = None


LINGER_S = 2.5  # real s the board stays up after the run ended: two and a half polls


class CommandBoard:
    """The feed, the app and the server of one live drill, started and stopped together."""

    def __init__(self, journal: Journal, clock: DrillClock, desk: Any, run_dir: Path, *,
                 drill_name: str, title: str = "", port: int = 0,
                 records: Callable[[], list[dict]] | None = None):
        self.journal = journal
        self.feed = BoardFeed(journal, clock, drill_name=drill_name, title=title, records=records,
                              desk=desk)
        self.server = BoardServer(create_app(self.feed, desk, run_dir), port)
        self.url = self.server.url

    def start(self) -> "CommandBoard":
        self.server.start()
        self.journal.record("board.started", url=self.url)
        return self

    def stop(self) -> None:
        # the page polls once a second: served a little longer, every open page shows the end
        # (the halt, the drill ended) before the board goes, however fast the rest came down
        time.sleep(LINGER_S)
        self.server.stop()
