"""Spider hardness: levels and component counts against the official evaluator.

``fixtures/scoring/hardness.jsonl`` holds Spider train gold queries with the
level and the (component1, component2, others) counts that the official
``evaluation.py`` gives them: one query for every count triple that occurs in
the train split, plus the official quirks (an OR swallowed after a column
value, AND/OR in HAVING counted as aggregations, NOT IN, set operations).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from text2sql_mlops.scoring.hardness import Components, classify, components, hardness

FIXTURE = Path(__file__).parent / "fixtures" / "scoring" / "hardness.jsonl"
CASES = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[case["sql"][:60] for case in CASES])
def test_official_hardness(case):
    assert hardness(case["sql"]) == case["hardness"]
    counts = components(case["sql"])
    assert [counts.component1, counts.component2, counts.others] == case["counts"]


@pytest.mark.parametrize(
    "counts, level",
    [
        ((0, 0, 0), "easy"), ((1, 0, 0), "easy"),
        ((1, 0, 2), "medium"), ((2, 0, 1), "medium"),
        ((2, 0, 3), "hard"), ((3, 0, 2), "hard"), ((1, 1, 0), "hard"),
        ((4, 0, 0), "extra"), ((1, 1, 1), "extra"), ((0, 2, 0), "extra"),
    ],
)
def test_thresholds(counts, level):
    assert classify(Components(*counts)) == level


def test_or_after_a_column_value_is_swallowed_like_the_official_parser():
    # "T2.Mar < T2.Jul OR ..." : the official parser reads the column value up to the next AND.
    swallowed = "SELECT a FROM t AS T1 JOIN u AS T2 ON T1.id = T2.id WHERE T2.x < T2.y OR T2.x > T2.z"
    counted = "SELECT a FROM t AS T1 JOIN u AS T2 ON T1.id = T2.id WHERE T2.x < 3 OR T2.x > 5"
    assert components(swallowed).component1 == 2  # WHERE + join
    assert components(counted).component1 == 3  # WHERE + join + OR


def test_only_the_outermost_query_counts():
    nested = "SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer WHERE country = 'France')"
    assert components(nested) == Components(component1=1, component2=1, others=0)
    assert hardness("SELECT a FROM t UNION SELECT b FROM u ORDER BY a LIMIT 3") == "hard"


def test_unparseable_sql_raises_value_error():
    with pytest.raises(ValueError):
        hardness("SELECT FROM WHERE (((")
