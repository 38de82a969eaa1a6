"""An HTTP proxy on loopback that refuses some requests (503 SlowDown) before passing the rest to S3."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


class FlakyProxy:
    """Forwards to ``upstream``; the first ``refuse`` requests whose method and path match answer 503."""

    def __init__(self, upstream: str, refuse: int, method: str = "PUT", path_contains: str = "") -> None:
        self.upstream = urlparse(upstream)
        self.remaining = refuse
        self.refused = 0
        self.method = method
        self.path_contains = path_contains
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _should_refuse(self, method: str, path: str) -> bool:
        with self.lock:
            if self.remaining > 0 and method == self.method and self.path_contains in path:
                self.remaining -= 1
                self.refused += 1
                return True
        return False

    def _handler(self) -> Any:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy._should_refuse(self.command, self.path):
                    error = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"{proxy.upstream.hostname}:{proxy.upstream.port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
