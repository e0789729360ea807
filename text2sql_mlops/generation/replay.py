"""A generator that answers prompts a recorded greedy run already answered.

Two evaluations of one model that differ only in their repair settings send the model
the same first-turn prompts, and often the same repair prompts (an SQLite error reads
the same under every gold-free and gold-using feedback mode). Greedy decoding gives a
prompt the same answer every time, so those answers can be read back from the first
run's turns instead of computed again; only prompts the recorded run never sent reach
the model. The model itself is built on the first such prompt, so a run that needs
nothing new never loads it.

Replay is exact only for greedy, one-sample generation with the same model and
``max_new_tokens``; ``generate`` refuses anything else. A batched backend can still
flip a rare near-tie between batch shapes (``rollout/metrics.py`` says the same of the
strict number), so a replayed run equals a fresh one up to those.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from ..core.records import Trajectory
from .base import Completion, GenerationRequest, Generator, Messages, SamplingParams


def prompt_key(messages: Messages) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


def recorded_answers(trajectories: Iterable[Trajectory]) -> dict[str, Completion]:
    """Prompt -> the answer a recorded run got for it, from its trajectories' turns.

    Only one-candidate turns are read: with several samples a prompt has no single answer."""
    answers: dict[str, Completion] = {}
    for trajectory in trajectories:
        for turn in trajectory.turns:
            if len(turn.candidates) == 1:
                [candidate] = turn.candidates
                answers[prompt_key(turn.messages)] = Completion(candidate.text, candidate.num_tokens)
    return answers


class ReplayGenerator(Generator):
    """Recorded answers first; ``make_model()`` (called at most once) for the rest."""

    name = "replay"

    def __init__(self, answers: dict[str, Completion], make_model: Callable[[], Generator]):
        self.answers = answers
        self.make_model = make_model
        self.model: Generator | None = None
        self.replayed = 0
        self.generated = 0

    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        if not params.greedy or params.num_samples != 1:
            raise ValueError("replay needs greedy decoding with one sample: only then does a prompt have one answer")
        keys = [prompt_key(request.messages) for request in requests]
        new = [index for index, key in enumerate(keys) if key not in self.answers]
        if new:
            if self.model is None:
                self.model = self.make_model()
            for index, samples in zip(new, self.model.generate([requests[i] for i in new], params), strict=True):
                self.answers[keys[index]] = samples[0]
        self.replayed += len(requests) - len(new)
        self.generated += len(new)
        return [[self.answers[key]] for key in keys]

    def close(self) -> None:
        if self.model is not None:
            self.model.close()
