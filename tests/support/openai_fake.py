"""A local fake of OpenAI's chat completions endpoint, over real HTTP, with its real response shapes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def completion(content: str) -> dict[str, Any]:
    """A `chat.completion` object as POST /v1/chat/completions returns it."""
    return {
        "id": "chatcmpl-AbC123dEf456GhI789jKl",
        "object": "chat.completion",
        "created": 1764300000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 212,
            "completion_tokens": 11,
            "total_tokens": 223,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }


RATE_LIMITED = (
    429,
    {
        "error": {
            "message": "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 500.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    },
)
SERVER_ERROR = (
    500,
    {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    },
)


@dataclass
class FakeOpenAI:
    """Answers each request with the next scripted reply: (status, body) or ("sleep", seconds, body)."""

    replies: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def answer(self, *contents: str) -> None:
        self.replies.extend((200, completion(c)) for c in contents)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append(
            {
                "path": request.path,
                "auth": request.headers.get("Authorization"),
                "json": request.get_json(silent=True),
            }
        )
        reply = self.replies.pop(0) if self.replies else SERVER_ERROR
        if reply[0] == "sleep":
            time.sleep(reply[1])
            reply = (200, reply[2])
        status, body = reply
        text = body if isinstance(body, str) else json.dumps(body)
        headers = {"x-request-id": "req_8d3f1e2a", "openai-processing-ms": "312"}
        if status == 429:
            headers["retry-after"] = "20"
        return Response(text, status=status, mimetype="application/json", headers=headers)(
            environ, start_response
        )


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join(timeout=5)
