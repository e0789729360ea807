"""The multi-turn loop: question + schema -> SQL -> sandbox -> feedback -> repaired SQL.

``run_chunks`` takes each chunk of examples through every turn. Each turn
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

Overlap (``run_chunks``, with ``sql_workers``): two chunks are in flight. The model is
only ever called from the caller's thread, one chunk's turn at a time; the gold runs,
the schema retrieval and the candidates' SQL run in a thread pool (SQLite releases the
GIL) while the model generates the other chunk's turn. That pays when the model runs
on a GPU or a server; next to a model on the CPU the threads only compete with it
(``config.sql_workers_for``). A chunk's results depend on nothing the other chunk does,
so the trajectories are the same with any number of workers.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from ..core.records import Candidate, Example, Trajectory, Turn
from ..generation import GenerationRequest, Generator, SamplingParams
from ..prompts import build_messages, extract_sql
from ..schema.select import PromptConfig, PromptSchema, prompt_schema
from ..scoring.errors import Execution, GoldResult, is_schema_valid, observe, outcome_type
from ..scoring.scorer import SCORING_RESULT_BYTES, SCORING_VALUE_BYTES, Scorer, verdict_database
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


@dataclass
class _Generate:
    """A chunk's request for the model: one generate call."""

    requests: list[GenerationRequest]
    params: SamplingParams
    turn: int


@dataclass
class _Await:
    """A chunk waiting for its candidates' evaluations."""

    futures: list[Future]


@dataclass
class _ChunkRun:
    """One chunk in flight: its steps (a generator of _Generate/_Await) and what it waits for."""

    number: int
    steps: Iterator
    pending: _Generate | _Await | None = None
    trajectories: list[Trajectory] | None = None
    generation_s: float = 0.0


class _ChunkCache:
    """What repeats within a chunk: a model often answers the same SQL again (every greedy
    sample, a repair that changes nothing, the gold itself), and the database never changes.
    Threads may compute one key twice; both get the same answer."""

    def __init__(self) -> None:
        self.executions: dict[tuple[str, str], Execution] = {}
        # Runs within the scorer's caps of queries the scorer ran and the sandbox's caps refused:
        # apart, so a query's observation never depends on which example's chunk ran it first.
        self.scored_executions: dict[tuple[str, str], Execution] = {}
        self.verdicts: dict[tuple[str, str, str], bool] = {}


class RolloutEngine:
    """Runs chunks of examples through the repair loop of one configuration.

    ``sql_workers`` threads execute and score candidates (0: in the caller's thread).
    ``repair_generator``, if given, answers the repair turns (2 and later) instead of ``generator``.
    """

    def __init__(self, config: RolloutConfig, generator: Generator, tables_json: str | None, sql_workers: int = 0,
                 repair_generator: Generator | None = None):
        self.config = config
        self.generator = generator
        self.repair_generator = repair_generator or generator
        self.tables_json = tables_json
        self.scope = REPAIR_SCOPES[config.repair_scope]
        self.prompt_config = PromptConfig.of(config)
        self.sandbox = Sandbox(timeout=config.timeout_sec, max_rows=MAX_ROWS)
        # The scorer reads values and results the sandbox's bomb caps refuse (as the official
        # evaluator does). A query the scorer ran within its caps is observed within them too,
        # so a correct candidate or a good gold never reads "not executable".
        self.scoring_sandbox = Sandbox(timeout=config.timeout_sec, max_rows=MAX_ROWS, max_value_bytes=SCORING_VALUE_BYTES,
                                       max_result_bytes=SCORING_RESULT_BYTES)
        self.scorer = Scorer(matcher=config.matcher, timeout=config.timeout_sec)
        self._pool = ThreadPoolExecutor(sql_workers, thread_name_prefix="rollout-sql") if sql_workers > 0 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.sandbox.close()
        self.scoring_sandbox.close()
        self.scorer.close()

    def run_chunks(self, chunks: list[tuple[int, list[tuple[int, Example]]]], in_flight: int = 2
                   ) -> Iterator[tuple[int, list[Trajectory], float]]:
        """(number, trajectories, seconds generating) for each numbered chunk, in order.

        Up to ``in_flight`` unfinished chunks advance: the model serves whichever chunk's
        evaluations are done, taking them in turn, so that while it generates for one
        chunk the pool evaluates another's candidates. A finished chunk makes room for the
        next at once (chunks that finish together would leave the model idle while the
        next ones start), and is handed back in order.
        """
        waiting = deque(chunks)
        running: list[_ChunkRun] = []
        last = -1  # the number of the chunk served last
        while waiting or running:
            while waiting and sum(run.trajectories is None for run in running) < max(1, in_flight):
                number, chunk = waiting.popleft()
                run = _ChunkRun(number, self._chunk_steps(chunk))
                self._advance(run, None)
                running.append(run)
            while running and running[0].trajectories is not None:
                run = running.pop(0)
                yield run.number, run.trajectories, run.generation_s
            unfinished = [run for run in running if run.trajectories is None]
            if not unfinished:
                continue
            ready = [run for run in unfinished if all(future.done() for future in run.pending.futures)]
            if not ready:
                # Only the futures still running: a done one would return at once, and the loop would spin.
                wait([future for run in unfinished for future in run.pending.futures if not future.done()],
                     return_when=FIRST_COMPLETED)
                continue
            # In turn: the first ready chunk after the one served last, wrapping around.
            run = min(ready, key=lambda r: (r.number <= last, r.number))
            last = run.number
            self._serve(run)

    def _serve(self, run: _ChunkRun) -> None:
        """Collect ``run``'s finished evaluations, then make its next generate call if it has
        one: it returns with the chunk's new candidates in the pool, or the chunk finished."""
        self._advance(run, [future.result() for future in run.pending.futures])
        if isinstance(run.pending, _Generate):
            start = time.perf_counter()
            generator = self.generator if run.pending.turn == 1 else self.repair_generator
            completions = generator.generate(run.pending.requests, run.pending.params)
            run.generation_s += time.perf_counter() - start
            self._advance(run, completions)

    @staticmethod
    def _advance(run: _ChunkRun, answer) -> None:
        try:
            run.pending = run.steps.send(answer)
        except StopIteration as finished:
            run.pending, run.trajectories = None, finished.value

    def _submit(self, function: Callable, *args) -> Future:
        if self._pool is not None:
            return self._pool.submit(function, *args)
        future: Future = Future()
        future.set_result(function(*args))
        return future

    def _chunk_steps(self, chunk: list[tuple[int, Example]]):
        """One chunk through every turn, as a generator: it yields what it needs (_Generate,
        _Await) and is sent the answer; it returns the chunk's trajectories."""
        cache = _ChunkCache()
        # The gold runs, catalogs and retrieval in the pool too, one task per database: its catalog,
        # retrieval index and sample values are cached on first use, so no two threads build them.
        by_database: dict[str, list[tuple[int, Example]]] = {}
        for position, (index, example) in enumerate(chunk):
            by_database.setdefault(example.db_path, []).append((position, (index, example)))
        started = yield _Await([self._submit(self._start_all, group, cache) for group in by_database.values()])
        episodes = [episode for _, episode in sorted(pair for group in started for pair in group)]
        for turn in range(1, self.config.max_turns + 1):
            active = [episode for episode in episodes if not episode.done]
            if not active:
                break
            requests = [self._request(episode, turn) for episode in active]
            params = SamplingParams(
                num_samples=self.config.num_samples, temperature=self.config.temperature, top_p=self.config.top_p,
                max_new_tokens=self.config.max_new_tokens, seed=sampling_seed(self.config.seed, turn, chunk[0][1].id),
            )
            completions = yield _Generate(requests, params, turn)
            # One task per example: its samples are often the same SQL, which the cache then runs once.
            evaluated = yield _Await([self._submit(self._evaluate_all, episode, samples, turn, cache)
                                      for episode, samples in zip(active, completions, strict=True)])
            for episode, request, candidates in zip(active, requests, evaluated, strict=True):
                self._step(episode, turn, request.messages, candidates)
        return [self._finish(episode) for episode in episodes]

    def _start_all(self, group: list[tuple[int, tuple[int, Example]]], cache: _ChunkCache) -> list[tuple[int, _Episode]]:
        return [(position, self._start(index, example, cache)) for position, (index, example) in group]

    def _start(self, index: int, example: Example, cache: _ChunkCache) -> _Episode:
        catalog = load_catalog(example.db_path, self.tables_json, example.db_id)
        schema = prompt_schema(example.db_path, example.question, self.prompt_config, self.tables_json, example.db_id)
        # Scoring a trivial prediction runs the gold query the scorer's way (and caches it
        # for the candidates): its gold_error is the bad-gold verdict. The gold rows as
        # written are what feedback and the error taxonomy compare with.
        gold_error = self.scorer.score(verdict_database(example.db_path, example.db_id), example.query, "SELECT 1").gold_error
        ran = self._observe(example.db_path, example.query, cache, scored=gold_error is None)
        gold = GoldResult.of(ran, error=gold_error)
        good = ran.ok and not gold_error
        trajectory = Trajectory(
            index=index, id=example.id, db_id=example.db_id, question=example.question, gold=example.query,
            gold_error=gold_error, gold_row_count=ran.row_count if good else None,
            schema_tables=list(schema.tables), prompt_style=self.prompt_config.prompt_style,
            gold_truncated=good and ran.truncated,
        )
        return _Episode(example, catalog, schema, gold, trajectory)

    def _request(self, episode: _Episode, turn: int) -> GenerationRequest:
        messages = build_messages(episode.schema.text, episode.example.question, episode.history, self.prompt_config.prompt_style)
        # Metadata never reaches a real model; only the mock backend reads gold_sql.
        meta = {"id": episode.example.id, "turn": turn, "gold_sql": episode.example.query}
        if episode.history:  # what a repair turn repairs (--repair_prompts_only repeats it)
            meta["previous_sql"] = episode.history[-1][0]
        return GenerationRequest(messages=messages, meta=meta)

    def _step(self, episode: _Episode, turn: int, messages, evaluated: list[tuple[Candidate, Diagnosis]]) -> None:
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

    def _evaluate_all(self, episode: _Episode, samples, turn: int, cache: _ChunkCache) -> list[tuple[Candidate, Diagnosis]]:
        return [self._evaluate(episode, sample.text, sample.num_tokens, turn, cache) for sample in samples]

    def _evaluate(self, episode: _Episode, text: str, num_tokens: int, turn: int, cache: _ChunkCache
                  ) -> tuple[Candidate, Diagnosis]:
        example = episode.example
        sql = extract_sql(text)
        key = (example.db_path, example.query, sql)
        if key not in cache.verdicts:
            cache.verdicts[key] = self.scorer.score(verdict_database(example.db_path, example.db_id), example.query, sql).match
        correct = cache.verdicts[key]
        ran = self._observe(example.db_path, sql, cache, scored=correct)
        reward = rule_reward(correct, ran.ok, turn, self.config.max_turns)
        cost = cost_reward(ran.plan)
        candidate = Candidate(
            text=text, sql=sql, num_tokens=num_tokens, executed=ran.ok, error=ran.error,
            error_type=None if correct else outcome_type(ran, episode.gold),
            row_count=ran.row_count if ran.ok else None, truncated=ran.truncated, schema_valid=is_schema_valid(ran.error),
            plan=ran.plan.to_dict() if ran.plan else None, signals=list(ran.signals), correct=correct,
            reward=reward, cost_reward=cost, total_reward=round(reward + cost, 10),
        )
        gold = replace(episode.gold, match=correct)
        return candidate, Diagnosis(sql=sql, execution=ran, catalog=episode.catalog, gold=gold)

    def _observe(self, db_path: str, sql: str, cache: _ChunkCache, scored: bool = False) -> Execution:
        """``sql`` run in the sandbox (once per chunk); ``scored``: the scorer ran it, so a
        failure at the sandbox's caps is run again within the scorer's."""
        key = (db_path, sql)
        if key not in cache.executions:
            cache.executions[key] = observe(self.sandbox, db_path, sql, max_rows=MAX_ROWS)
        ran = cache.executions[key]
        if scored and not ran.ok:
            if key not in cache.scored_executions:  # kept even when it fails too (once per chunk, as above)
                cache.scored_executions[key] = observe(self.scoring_sandbox, db_path, sql, max_rows=MAX_ROWS)
            ran = cache.scored_executions[key]
        return ran

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
