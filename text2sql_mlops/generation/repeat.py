"""A generator that answers a repair turn by repeating the failed query: no model call.

``rollout --repair_prompts_only`` uses it for the repair turns. A rollout that only collects
repair prompts (the ``rollout_repair`` stage: each failing first answer with its feedback,
for the repair model to learn from, answered there by the gold SQL) then costs its first
turns alone, and every failing answer stays failing, which is what repeating a query does.
It reads the query from the request's metadata (``previous_sql``, set by the rollout loop),
so it works the same for every prompt style.
"""

from __future__ import annotations

from ..prompts import format_answer
from .base import Completion, GenerationRequest, Generator, SamplingParams


class RepeatGenerator(Generator):
    name = "repeat"

    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for request in requests:
            if "previous_sql" not in request.meta:
                raise ValueError("repeat answers repair turns only: this request has no previous query to repeat")
            out.append([Completion(text=format_answer(request.meta["previous_sql"]))] * params.num_samples)
        return out
