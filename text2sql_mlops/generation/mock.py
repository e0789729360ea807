"""``mock``: a deterministic stand-in model, so the whole feedback and mining path runs in tests.

It answers from the request metadata (``gold_sql``, ``turn``), never from a model:
turn 1 returns a broken variant of the gold SQL (its first table renamed to one
that does not exist, so SQLite reports ``no such table``); later turns return
the gold SQL. With ``num_samples > 1`` at turn 1, samples at odd positions are
the gold SQL, so first-turn sample pairs exist too. Only tests and demos use it:
its numbers say nothing about any model.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Completion, GenerationRequest, Generator, SamplingParams


@dataclass(frozen=True)
class MockOptions:
    """The mock takes no options: it answers from the request metadata alone."""


def broken_variant(sql: str) -> str:
    """The gold SQL with its first table renamed to a table that does not exist."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError:
        return sql + " WHERE no_such_column = 1"
    table = next(tree.find_all(exp.Table), None)
    if table is None:
        return "SELECT no_such_column FROM no_such_table"
    table.set("this", exp.to_identifier(f"{table.name}_missing"))
    return tree.sql(dialect="sqlite")


class MockGenerator(Generator):
    name = "mock"

    def __init__(self, options: MockOptions | None = None) -> None:
        pass

    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for request in requests:
            gold = request.meta["gold_sql"]
            first_turn = request.meta.get("turn", 1) == 1
            samples = []
            for index in range(params.num_samples):
                sql = broken_variant(gold) if first_turn and index % 2 == 0 else gold
                text = f"```sql\n{sql}\n```"
                samples.append(Completion(text=text, num_tokens=len(text.split())))
            out.append(samples)
        return out
