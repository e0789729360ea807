"""Read the prompt prefix a batch's rows share once per forward pass, in training.

Spider prompts are mostly schema, and every question on one database has the same
schema text (``schema/render.py`` puts the question's values after it). A DPO batch
holds each prompt twice (chosen and rejected answer), and an SFT batch of questions on
one database (``prefix_batches``) holds one schema eight times. A plain forward pass
computes every copy of it, with its backward: of the demo's 313k SFT tokens, 248k repeat
a schema already read.

``share_prompt_prefixes`` wraps the model's loss forward (TRL's fused LM head, called
with ``fused_lm_head=True`` and labels): rows that share a long prefix are read as one
row of that prefix, whose attention cache (keys and values, with their gradient) is
expanded over the rows, and then each row's own tokens after it. Causal attention makes
this the same computation: no prefix position sees a later token, so the prefix's states
are the same in every row. The prefix stops before the first scored token of every row
(the position that predicts it stays in the row's own part), so the per-token outputs
are the plain forward's, reassembled in the batch's layout. Anything else (no labels,
left padding, router logits, gradient checkpointing) runs the forward unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from ..generation.hf import cache_keyword, common_prefix, length_buckets, runs

MIN_PREFIX = 16  # shorter shared prefixes are not worth a second forward call
PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


def prefix_batches(prompts: list[list[int]], batch_size: int, seed: int) -> list[int]:
    """Row indices in training order: batches of ``batch_size`` rows whose prompts share a
    prefix (the same database's schema), the rows of each group shuffled, the rows left over
    from the groups batched together, the batches in a shuffled order."""
    rng = random.Random(seed)
    by_tokens = sorted(range(len(prompts)), key=lambda i: prompts[i])
    groups = [[by_tokens[i] for i in run] for run in runs([prompts[i] for i in by_tokens])]
    batches, leftovers = [], []
    for group in groups:
        rng.shuffle(group)
        cut = len(group) - len(group) % batch_size
        batches += [group[start : start + batch_size] for start in range(0, cut, batch_size)]
        leftovers += group[cut:]
    batches += [leftovers[start : start + batch_size] for start in range(0, len(leftovers), batch_size)]
    rng.shuffle(batches)
    return [index for batch in batches for index in batch]


class PrefixGroupedSampler:
    """A ``Sampler`` of ``prefix_batches``' order, drawn anew (seed + epoch) each epoch."""

    def __init__(self, prompts: list[list[int]], batch_size: int, seed: int) -> None:
        self.prompts, self.batch_size, self.seed, self.epoch = prompts, batch_size, seed, 0

    def __len__(self) -> int:
        return len(self.prompts)

    def __iter__(self) -> Iterator[int]:
        order = prefix_batches(self.prompts, self.batch_size, self.seed + self.epoch)
        self.epoch += 1
        return iter(order)


def shared_prefixes(rows: list[list[int]], first_scored: list[int]) -> list[tuple[list[int], int]]:
    """(row indices, prefix length) groups of a batch: rows that share at least ``MIN_PREFIX``
    leading tokens, up to the position before the first scored token of each (``first_scored``:
    the index of its first label), so that position stays in the row's own part. The rows that
    share nothing come last, as one group with a prefix of 0."""
    groups, alone = [], []
    order = sorted(range(len(rows)), key=lambda i: rows[i])
    for run in runs([rows[i] for i in order]):
        members = [order[i] for i in run]
        length = min(min(common_prefix(rows[members[0]], rows[i]) for i in members), min(first_scored[i] for i in members) - 1)
        if len(members) > 1 and length >= MIN_PREFIX:
            groups.append((sorted(members), length))
        else:
            alone += members
    return groups + ([(sorted(alone), 0)] if alone else [])


def share_trainer_prefixes(trainer) -> None:
    """``share_prompt_prefixes`` on the models a TRL trainer patched with its fused LM head:
    the policy (the model inside a PEFT wrapper) and a separate reference model."""
    model = trainer.model
    share_prompt_prefixes(model.get_base_model() if hasattr(model, "get_base_model") else model)
    if getattr(trainer, "ref_model", None) is not None:
        share_prompt_prefixes(trainer.ref_model)


def share_prompt_prefixes(model) -> None:
    """Make ``model``'s fused-loss forward (TRL's ``add_fused_lm_head``, already added) read
    shared prompt prefixes once (module docstring). Generation and every other call are untouched."""
    import torch
    from transformers import DynamicCache

    fused = model.forward
    keyword = cache_keyword(model)

    def forward(*args, fused_lm_head=False, labels=None, **kwargs):
        input_ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        # Gradient checkpointing recomputes each layer in backward, and a recomputed layer would
        # append its keys and values to the shared cache a second time.
        plain = (args or not fused_lm_head or labels is None or input_ids is None or mask is None or input_ids.dim() != 2
                 or set(kwargs) - {"input_ids", "attention_mask", "use_cache", "num_items_in_batch"}
                 or _checkpointing(model))
        groups = None if plain else _groups(input_ids, mask, labels)
        if groups is None:
            return fused(*args, fused_lm_head=fused_lm_head, labels=labels, **kwargs)

        lengths, width = mask.sum(dim=1).tolist(), input_ids.shape[1]
        rows, parts = [], []
        for members, length in groups:
            if length:
                prefix = DynamicCache(config=model.config)
                fused(input_ids=input_ids[members[:1], :length], attention_mask=mask[members[:1], :length], use_cache=True,
                      logits_to_keep=1, **{keyword: prefix})
            # The rows' own parts in buckets of similar length: padded to the batch's longest,
            # a short question's part would be mostly pads.
            for bucket in length_buckets([lengths[i] - length for i in members]):
                chosen = [members[i] for i in bucket]
                end, index = max(lengths[i] for i in chosen), torch.tensor(chosen, device=input_ids.device)
                extra = {}
                if length:
                    extra[keyword] = _expanded(prefix, len(chosen), model.config)
                    extra["position_ids"] = torch.arange(length, end, device=input_ids.device).expand(len(chosen), -1)
                output = fused(input_ids=input_ids[index, length:end], attention_mask=mask[index, :end],
                               labels=labels[index, length:end], fused_lm_head=True, **extra)
                rows += chosen
                parts.append(((length, width - end), output))
        back = torch.tensor(sorted(range(len(rows)), key=rows.__getitem__), device=input_ids.device)
        fields = {}
        for name in PER_TOKEN:
            pieces = [getattr(output, name) for _, output in parts]
            if any(piece is None for piece in pieces):
                fields[name] = None
                continue
            # Back in the batch's layout: no position of a prefix or of the pads scores anything (zeros).
            fields[name] = torch.cat([torch.nn.functional.pad(piece, padding) for (padding, _), piece in zip(parts, pieces)])[back]
        count = kwargs.get("num_items_in_batch")
        fields["loss"] = -fields["log_probs"].sum() / (fields["label_mask"].sum().clamp(min=1) if count is None else count)
        return type(parts[0][1])(**fields)

    model.forward = forward


def _checkpointing(model) -> bool:
    """Whether activation (gradient) checkpointing is on; transformers 5.2x renamed the property."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        if hasattr(type(model), name):
            return bool(getattr(model, name))
    return False


def _groups(input_ids, mask, labels) -> list[tuple[list[int], int]] | None:
    """``shared_prefixes`` of a right-padded batch, or None where no prefix would be shared
    (or the batch is not right-padded: a pad inside a row would break the shared positions)."""
    lengths = mask.sum(dim=1).tolist()
    if any(int(mask[row, :length].sum()) != length for row, length in enumerate(lengths)):
        return None
    scored = labels != -100
    first = [int(row.nonzero()[0]) if row.any() else length for row, length in zip(scored, lengths)]
    tokens = [ids[:length] for ids, length in zip(input_ids.tolist(), lengths)]
    groups = shared_prefixes(tokens, first)
    return groups if any(length for _, length in groups) else None


def _expanded(cache, rows: int, config):
    """A cache holding ``cache``'s one row as ``rows`` rows (views: gradients add up in the prefix)."""
    from transformers import DynamicCache

    expanded = DynamicCache(config=config)
    for index, layer in enumerate(cache.layers):
        expanded.update(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1), index)
    return expanded
