"""A fake OpenAI-compatible server for tests: the ``openai`` generator's endpoint, or a vLLM
server's stand-in (``vllm serve`` speaks the same API) for scale-out tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def echo(body: dict, index: int) -> str:
    """The last message, the request's seed and the choice's index: tests see what was asked."""
    return f"{body['messages'][-1]['content']} | seed {body['seed']} #{index}"


class FakeOpenAI:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that answers each request after ``delay`` seconds.

    Choice ``i`` of a request is ``answer(body, i)``; the default echoes the last message
    and the seed. It fails its first request with HTTP 500 (``fail_first``), can ignore
    ``n`` as Ollama does, answers 404 for model ``missing``, and records bodies, headers and
    the most requests it had in flight at once.
    """

    def __init__(self, fail_first: bool = True, ignore_n: bool = False, delay: float = 0.05,
                 answer: Callable[[dict, int], str] | None = None):
        self.fail_first, self.ignore_n, self.delay = fail_first, ignore_n, delay
        self.answer = answer or echo
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold a server thread forever

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.bodies.append(body)
                    fake.auth.append(self.headers.get("Authorization"))
                    first = len(fake.bodies) == 1
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                time.sleep(fake.delay)
                with fake.lock:
                    fake.in_flight -= 1
                if self.path != "/v1/chat/completions" or body["model"] == "missing":
                    return self._send(404, {"error": {"message": f"model {body['model']} not found"}})
                if first and fake.fail_first:
                    return self._send(500, {"error": {"message": "warming up"}})
                n = 1 if fake.ignore_n else body["n"]
                choices = [{"index": i, "message": {"role": "assistant", "content": fake.answer(body, i)}} for i in range(n)]
                self._send(200, {"choices": choices, "usage": {"completion_tokens": 5 * n}})

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
