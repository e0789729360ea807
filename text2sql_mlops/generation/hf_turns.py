"""The attention cache of finished answers, kept for the turn that continues them.

A repair prompt is the previous turn's prompt, the model's answer to it and the feedback.
Everything but the feedback was read or generated in the previous generate call, so the
``hf`` backend keeps each finished row's keys and values (``TurnCache``) and the next call
reads only the tokens after the longest kept match: the demo's dev repair turns ran 1.25x
faster for the SFT model and 1.10x for the base model, whose answers hold no SQL, so the
repair prompt's empty code block departs from them at once (``bench/bench_turn_cache.py``).
Rows are matched by token ids, not text: a re-rendered answer that tokenizes differently
from the generated ids is reused up to where they part.

A row's cache is stored as its group's prefix cache (the schema every prompt of a batch
group shares: one object for the group, ``hf.py``) plus the row's own positions after it,
so a batch of 64 prompts on one database keeps one copy of its schema. Rows are kept in
the order they finished and the oldest go first past ``limit_bytes``; a matched row is
dropped (a turn continues it once), and a row no call continued within ``KEEP_CALLS`` calls
(a correct answer, a sample the repair did not pick) goes too. Memory, not correctness, is
the only cost of a row nobody continues.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

# A rollout's next turn of a chunk comes one call later, or two with two chunks in flight
# (rollout/loop.py: one chunk's generation while the other's SQL runs).
KEEP_CALLS = 2


@dataclass(eq=False)
class KeptRow:
    tokens: tuple[int, ...]  # the prompt, then the generated tokens whose states are kept
    prompt_length: int
    base: DynamicCache | None  # the group's shared prefix (batch 1), or None
    base_length: int
    own: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys and values [1, heads, positions, dim] after the base
    nbytes: int
    call: int  # the generate call that kept it


def nbytes(states: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
    return sum(keys.nbytes + values.nbytes for keys, values in states)


def layer_states(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


class TurnCache:
    """Finished rows' attention caches, looked up by the token ids a new prompt starts with."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.rows: dict[int, KeptRow] = {}  # insertion order = the order rows finished
        self.by_prompt: dict[tuple[int, ...], list[KeptRow]] = {}
        self.base_users: dict[int, int] = {}  # id(base) -> rows that use it (a base's bytes count once)
        self.size = 0
        self.calls = 0

    def new_call(self) -> None:
        """A generate call starts: rows older than ``KEEP_CALLS`` calls will not be continued."""
        self.calls += 1
        for row in [row for row in self.rows.values() if row.call < self.calls - KEEP_CALLS]:
            self.drop(row)

    def __len__(self) -> int:
        return len(self.rows)

    def match(self, prompt: list[int]) -> tuple[KeptRow | None, int]:
        """The kept row that shares the most leading tokens with ``prompt`` and how many it
        shares (at most all but the prompt's last token, which the caller must read to predict
        from it); (None, 0) unless the prompt continues some row's whole prompt."""
        best, best_length = None, 0
        for length in {len(key) for key in self.by_prompt}:
            if length >= len(prompt):
                continue
            for row in self.by_prompt.get(tuple(prompt[:length]), ()):
                shared = length
                for kept, new in zip(row.tokens[length:], prompt[length:]):
                    if kept != new:
                        break
                    shared += 1
                if shared > best_length:
                    best, best_length = row, shared
        return best, min(best_length, len(prompt) - 1)

    @staticmethod
    def cache(row: KeptRow, length: int, config) -> DynamicCache:
        """A batch-1 cache of ``row``'s first ``length`` positions."""
        cache = DynamicCache(config=config)
        own_length = length - row.base_length
        base = layer_states(row.base) if row.base is not None else [(None, None)] * len(row.own)
        for index, ((base_keys, base_values), (keys, values)) in enumerate(zip(base, row.own)):
            if own_length > 0:
                keys, values = keys[..., :own_length, :], values[..., :own_length, :]
                if base_keys is not None:
                    keys, values = torch.cat([base_keys, keys], dim=-2), torch.cat([base_values, values], dim=-2)
            else:
                keys, values = base_keys[..., :length, :], base_values[..., :length, :]
            cache.update(keys, values, index)
        return cache

    def add(self, tokens: list[int], prompt_length: int, base: DynamicCache | None, base_length: int,
            own: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        row = KeptRow(tuple(tokens), prompt_length, base, base_length, own, nbytes(own), self.calls)
        added = row.nbytes + (nbytes(layer_states(base)) if base is not None and id(base) not in self.base_users else 0)
        if added > self.limit_bytes:
            return
        self.rows[id(row)] = row
        self.by_prompt.setdefault(row.tokens[:prompt_length], []).append(row)
        if base is not None:
            self.base_users[id(base)] = self.base_users.get(id(base), 0) + 1
        self.size += added
        while self.size > self.limit_bytes:
            self.drop(next(iter(self.rows.values())))

    def drop(self, row: KeptRow) -> None:
        if self.rows.pop(id(row), None) is None:
            return
        key = row.tokens[: row.prompt_length]
        self.by_prompt[key].remove(row)
        if not self.by_prompt[key]:
            del self.by_prompt[key]
        self.size -= row.nbytes
        if row.base is not None:
            self.base_users[id(row.base)] -= 1
            if not self.base_users[id(row.base)]:
                del self.base_users[id(row.base)]
                self.size -= nbytes(layer_states(row.base))

    def clear(self) -> None:
        self.rows.clear()
        self.by_prompt.clear()
        self.base_users.clear()
        self.size = 0
