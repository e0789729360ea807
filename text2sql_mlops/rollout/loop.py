"""The multi-turn loop: question + schema -> SQL -> sandbox -> feedback -> repaired SQL.

One ``run_chunk`` call takes a chunk of examples through every turn. Each turn
sends ONE ``generate`` call with the requests of all examples still active, so a
backend batches across examples. Every candidate is executed, planned and scored
(official EX, ``scoring/scorer.py``); the repair scope then decides, per example,
whether the selected candidate goes back to the model with feedback.

The repair scopes (verified, online, online_guarded: ``config.REPAIR_SCOPES``) decide
when an example is repaired again. A configuration uses gold (is an *oracle*
configuration) when its scope or its feedback mode (``feedback.FEEDBACK_MODES``) does;
otherwise it is *strict*: no gold information reaches the model's prompts or the
stopping rule.

With ``num_samples`` > 1 every turn samples that many candidates from one prompt;
the repair continues from one *selected* candidate. Selection is gold-free (fewest
guard signals, executable first, then the lowest index) except that the verified
scope, which stops on a match anyway, selects the first correct candidate.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from ..core.records import Candidate, Example, Trajectory, Turn
from ..generation import GenerationRequest, Generator, SamplingParams
from ..prompts import build_messages, extract_sql
from ..schema.select import PromptConfig, PromptSchema, prompt_schema
from ..scoring.errors import Execution, GoldResult, is_schema_valid, observe, outcome_type
from ..scoring.scorer import Scorer
from ..sql.catalog import Catalog, load_catalog
from ..sql.sandbox import Sandbox
from .config import REPAIR_SCOPES, RepairScope, RolloutConfig
from .feedback import Diagnosis, build_feedback
from .rewards import cost_reward, rule_reward

MAX_ROWS = 10_000  # rows fetched per query; row counts above it are reported as "more than"

# --------------------------------------------------------------------------- the loop


def select(candidates: list[Candidate], scope: RepairScope) -> int:
    if scope.uses_gold:
        correct = [i for i, c in enumerate(candidates) if c.correct]
        if correct:
            return correct[0]
    return min(range(len(candidates)), key=lambda i: (not candidates[i].executed, len(candidates[i].signals), i))


@dataclass
class _Episode:
    """One example on its way through the turns."""

    example: Example
    catalog: Catalog
    schema: PromptSchema
    gold: GoldResult  # match is filled per candidate
    trajectory: Trajectory
    history: list[tuple[str, str]] = field(default_factory=list)
    done: bool = False


def sampling_seed(seed: int, turn: int, first_id: str) -> int:
    """The sampling seed of one generate call: the same chunk and turn always sample alike,
    so a resumed run draws what the interrupted one would have."""
    digest = hashlib.sha256(f"{seed}/{turn}/{first_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


class RolloutEngine:
    """Runs chunks of examples through the repair loop of one configuration."""

    def __init__(self, config: RolloutConfig, generator: Generator, tables_json: str | None):
        self.config = config
        self.generator = generator
        self.tables_json = tables_json
        self.scope = REPAIR_SCOPES[config.repair_scope]
        self.prompt_config = PromptConfig.of(config)
        self.sandbox = Sandbox(timeout=config.timeout_sec, max_rows=MAX_ROWS)
        self.scorer = Scorer(matcher=config.matcher, timeout=config.timeout_sec)
        # Per chunk: a model often answers the same SQL again (every greedy sample, a repair
        # that changes nothing, the gold itself), and the database never changes.
        self._executions: dict[tuple[str, str], Execution] = {}
        self._verdicts: dict[tuple[str, str, str], bool] = {}

    def close(self) -> None:
        self.sandbox.close()
        self.scorer.close()

    def run_chunk(self, chunk: list[tuple[int, Example]]) -> tuple[list[Trajectory], float]:
        """The trajectories of ``chunk`` ((dataset index, example) pairs), and the seconds spent generating."""
        self._executions.clear()
        self._verdicts.clear()
        episodes = [self._start(index, example) for index, example in chunk]
        generation_s = 0.0
        for turn in range(1, self.config.max_turns + 1):
            active = [episode for episode in episodes if not episode.done]
            if not active:
                break
            requests = [self._request(episode, turn) for episode in active]
            params = SamplingParams(
                num_samples=self.config.num_samples, temperature=self.config.temperature, top_p=self.config.top_p,
                max_new_tokens=self.config.max_new_tokens, seed=sampling_seed(self.config.seed, turn, chunk[0][1].id),
            )
            start = time.perf_counter()
            completions = self.generator.generate(requests, params)
            generation_s += time.perf_counter() - start
            for episode, request, samples in zip(active, requests, completions, strict=True):
                self._step(episode, turn, request.messages, samples)
        return [self._finish(episode) for episode in episodes], generation_s

    def _start(self, index: int, example: Example) -> _Episode:
        catalog = load_catalog(example.db_path, self.tables_json, example.db_id)
        schema = prompt_schema(example.db_path, example.question, self.prompt_config, self.tables_json, example.db_id)
        # Scoring a trivial prediction runs the gold query the scorer's way (and caches it
        # for the candidates): its gold_error is the bad-gold verdict. The gold rows as
        # written are what feedback and the error taxonomy compare with.
        gold_error = self.scorer.score(example.db_path, example.query, "SELECT 1").gold_error
        ran = self._observe(example.db_path, example.query)
        gold = GoldResult(False, gold_error, ran.rows, ran.row_count)
        trajectory = Trajectory(
            index=index, id=example.id, db_id=example.db_id, question=example.question, gold=example.query,
            gold_error=gold_error, gold_row_count=ran.row_count if ran.ok and not gold_error else None,
            schema_tables=list(schema.tables), prompt_style=self.prompt_config.prompt_style,
        )
        return _Episode(example, catalog, schema, gold, trajectory)

    def _request(self, episode: _Episode, turn: int) -> GenerationRequest:
        messages = build_messages(episode.schema.text, episode.example.question, episode.history, self.prompt_config.prompt_style)
        # Metadata never reaches a real model; only the mock backend reads gold_sql.
        meta = {"id": episode.example.id, "turn": turn, "gold_sql": episode.example.query}
        return GenerationRequest(messages=messages, meta=meta)

    def _step(self, episode: _Episode, turn: int, messages, samples) -> None:
        evaluated = [self._evaluate(episode, sample.text, sample.num_tokens, turn) for sample in samples]
        candidates = [candidate for candidate, _ in evaluated]
        selected = select(candidates, self.scope)
        record = Turn(turn=turn, messages=messages, candidates=candidates, selected=selected)
        episode.trajectory.turns.append(record)
        if not self.scope.needs_repair(candidates, candidates[selected]):
            episode.trajectory.stop_reason, episode.done = self.scope.stop_reason, True
        elif turn == self.config.max_turns:
            episode.trajectory.stop_reason, episode.done = "max_turns", True
        else:
            record.feedback = build_feedback(evaluated[selected][1], self.config.feedback_detail, self.config.feedback_mode)
            episode.history.append((candidates[selected].sql, record.feedback))

    def _evaluate(self, episode: _Episode, text: str, num_tokens: int, turn: int) -> tuple[Candidate, Diagnosis]:
        example = episode.example
        sql = extract_sql(text)
        ran = self._observe(example.db_path, sql)
        key = (example.db_path, example.query, sql)
        if key not in self._verdicts:
            self._verdicts[key] = self.scorer.score(example.db_path, example.query, sql).match
        correct = self._verdicts[key]
        reward = rule_reward(correct, ran.ok, turn, self.config.max_turns)
        cost = cost_reward(ran.plan)
        candidate = Candidate(
            text=text, sql=sql, num_tokens=num_tokens, executed=ran.ok, error=ran.error,
            error_type=None if correct else outcome_type(ran, episode.gold),
            row_count=ran.row_count if ran.ok else None, truncated=ran.truncated, schema_valid=is_schema_valid(ran.error),
            plan=ran.plan.to_dict() if ran.plan else None, signals=list(ran.signals), correct=correct,
            reward=reward, cost_reward=cost, total_reward=round(reward + cost, 10),
        )
        gold = GoldResult(correct, episode.gold.error, episode.gold.rows, episode.gold.row_count)
        return candidate, Diagnosis(sql=sql, execution=ran, catalog=episode.catalog, gold=gold)

    def _observe(self, db_path: str, sql: str) -> Execution:
        if (db_path, sql) not in self._executions:
            self._executions[db_path, sql] = observe(self.sandbox, db_path, sql, max_rows=MAX_ROWS)
        return self._executions[db_path, sql]

    def _finish(self, episode: _Episode) -> Trajectory:
        trajectory = episode.trajectory
        trajectory.final_sql = trajectory.last.answer.sql
        trajectory.final_correct = trajectory.last.answer.correct
        first_correct = next((c.sql for c in trajectory.candidates() if c.correct), None)
        if first_correct is not None:
            trajectory.target = {"sql": first_correct, "source": "model"}
        elif self.config.use_gold_when_failed and trajectory.gold_error is None:
            trajectory.target = {"sql": trajectory.gold, "source": "gold"}
        return trajectory
