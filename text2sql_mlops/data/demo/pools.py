"""Name pools and small draws shared by the demo databases.

Names contain no apostrophes, so every value can be quoted in SQL as ``'...'``
without escaping (the Spider tokenizer does not handle ``''``).
"""

from __future__ import annotations

import datetime
import random

FIRST_NAMES = [
    "Aisha", "Alejandro", "Amelia", "Anton", "Beatriz", "Bruno", "Camille", "Chen", "Dana", "Daniel",
    "Elena", "Emeka", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jonas",
    "Julia", "Kenji", "Laila", "Leon", "Lucia", "Marcus", "Maya", "Mateo", "Nadia", "Nina",
    "Noah", "Olga", "Omar", "Priya", "Rafael", "Rosa", "Samuel", "Sara", "Sofia", "Tariq",
    "Tomas", "Valentina", "Victor", "Wei", "Yara", "Yusuf", "Zoe", "Arjun", "Clara", "Diego",
]

LAST_NAMES = [
    "Adams", "Alvarez", "Andersen", "Baker", "Bianchi", "Castro", "Chowdhury", "Costa", "Dubois", "Eriksen",
    "Fischer", "Garcia", "Gupta", "Hansen", "Hoffmann", "Ibrahim", "Ito", "Jensen", "Kim", "Kowalski",
    "Larsen", "Lee", "Lopez", "Martin", "Meyer", "Moreau", "Nakamura", "Nguyen", "Novak", "Okafor",
    "Olsen", "Park", "Patel", "Petrov", "Popescu", "Rossi", "Santos", "Schmidt", "Silva", "Singh",
    "Suzuki", "Tanaka", "Torres", "Novikova", "Wagner", "Walker", "Wang", "Weber", "Yilmaz", "Zhang",
]

CITIES = [
    "Boston", "Chicago", "Denver", "Austin", "Seattle", "Portland", "Atlanta", "Phoenix",
    "Miami", "Detroit", "Minneapolis", "Nashville",
]


def person_names(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct full names, so a name identifies one person in a question."""
    pairs = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    return [f"{first} {last}" for first, last in rng.sample(pairs, n)]


def distinct_numbers(rng: random.Random, low: int, high: int, n: int, scale: int = 1) -> list[float] | list[int]:
    """``n`` distinct values in ``[low, high]`` divided by ``scale``: no ties, so ORDER BY answers are unambiguous."""
    values = rng.sample(range(low, high + 1), n)
    return values if scale == 1 else [round(v / scale, 2) for v in values]


def date_between(rng: random.Random, start: str, end: str) -> str:
    """An ISO date (``YYYY-MM-DD``) drawn uniformly from ``[start, end]``."""
    first, last = datetime.date.fromisoformat(start), datetime.date.fromisoformat(end)
    return (first + datetime.timedelta(days=rng.randrange((last - first).days + 1))).isoformat()
