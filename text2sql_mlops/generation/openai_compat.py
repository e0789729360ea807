"""``openai``: any OpenAI-compatible chat endpoint (vLLM or SGLang server, Ollama, OpenAI).

Standard library only: one POST to ``{base_url}/chat/completions`` per prompt,
``max_concurrency`` of them in flight (a server batches concurrent requests itself),
retried with exponential backoff on 429, 5xx and connection errors. Other HTTP
errors (bad key, unknown model) are the user's to fix and fail at once.

The server renders the chat template, so prompts match training only if the server
runs the same template as ``chat.render_prompt`` (true for a vLLM server on the same
model folder). Servers may also apply the model's own sampling defaults (top_k,
repetition penalty) that the other backends drop.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPException
from typing import ClassVar

from ..core.errors import UserError
from .base import Completion, GenerationRequest, Generator, Messages, SamplingParams, option


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


@dataclass(frozen=True)
class OpenAIOptions:
    BATCHES_INTERNALLY: ClassVar[bool] = True  # the server batches concurrent requests

    base_url: str | None = option(None, "the endpoint, e.g. http://localhost:8000/v1")
    model: str | None = option(None, "the model name the server serves")
    api_key_env: str = option("OPENAI_API_KEY", "environment variable holding the API key (unset: no key sent)")
    max_concurrency: int = option(8, "requests in flight at once")
    max_retries: int = option(5, "retries on 429, 5xx and connection errors")
    backoff_s: float = option(1.0, "first retry delay in seconds, doubled each time")
    timeout_s: float = option(120.0, "seconds to wait for one answer")


class OpenAIGenerator(Generator):
    """Chat completions from ``model`` at ``base_url`` (e.g. ``http://localhost:8000/v1``).

    The API key is read from the environment variable named by ``api_key_env``;
    when it is unset no key is sent, which local servers accept.
    """

    name = "openai"
    frees_cpu = True

    def __init__(self, options: OpenAIOptions) -> None:
        base_url, model, max_concurrency, max_retries = options.base_url, options.model, options.max_concurrency, options.max_retries
        if not base_url or not model:
            raise UserError("openai generator needs base_url (e.g. http://localhost:8000/v1) and model (the name the server serves)")
        if max_concurrency < 1 or max_retries < 0:
            raise UserError(f"openai generator: max_concurrency must be at least 1 and max_retries at least 0, got {max_concurrency} and {max_retries}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = os.environ.get(options.api_key_env)
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_s = options.backoff_s
        self.timeout_s = options.timeout_s

    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="openai") as pool:
            return list(pool.map(lambda request: self._complete(request.messages, params), requests))

    def _complete(self, messages: Messages, params: SamplingParams) -> list[Completion]:
        if params.greedy:
            # Greedy samples are all the same answer: ask once, copy it.
            (answer,) = self._ask(messages, params, n=1, seed=params.seed)
            return [Completion(answer.text, answer.num_tokens) for _ in range(params.num_samples)]
        completions: list[Completion] = []
        while len(completions) < params.num_samples:
            # Servers that ignore `n` (Ollama) return one choice: ask again for the rest,
            # with a new seed, or a seeded server would return the same sample again.
            missing = params.num_samples - len(completions)
            completions += self._ask(messages, params, n=missing, seed=params.seed + len(completions))[:missing]
        return completions

    def _ask(self, messages: Messages, params: SamplingParams, n: int, seed: int) -> list[Completion]:
        body = {
            "model": self.model,
            "messages": messages,
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": seed,
        }
        response = self._post(body)
        choices = response.get("choices") or []
        if not choices:
            raise UserError(f"{self.url}: the response has no choices: {_one_line(json.dumps(response))}")
        # `usage` counts all choices together; an even split keeps the total right.
        total = (response.get("usage") or {}).get("completion_tokens") or 0
        share, extra = divmod(total, len(choices))
        return [
            Completion(text=choice["message"].get("content") or "", num_tokens=share + (index < extra))
            for index, choice in enumerate(choices)
        ]

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.max_retries + 1):
            retry_after = 0.0
            try:
                request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.load(response)
            except urllib.error.HTTPError as error:  # before URLError: it is one
                if error.code != 429 and error.code < 500:
                    raise UserError(f"{self.url}: HTTP {error.code}: {_one_line(error.read().decode(errors='replace'))}") from None
                problem = f"HTTP {error.code}"
                header = error.headers.get("Retry-After", "") if error.headers else ""
                retry_after = float(header) if header.replace(".", "", 1).isdigit() else 0.0
            except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as error:
                problem = _one_line(str(getattr(error, "reason", error)) or type(error).__name__)
            except json.JSONDecodeError as error:
                raise UserError(f"{self.url}: the response is not JSON ({error})") from None
            if attempt < self.max_retries:
                # Jitter, so that requests refused together do not all come back together.
                time.sleep(max(retry_after, self.backoff_s * 2**attempt * random.uniform(0.5, 1.5)))
        raise UserError(f"{self.url}: no answer after {self.max_retries + 1} attempts (last: {problem}); is the server running?")
