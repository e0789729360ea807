"""``text2sql-mlops rollout``: multi-turn, execution-guided generation over a dataset.

    text2sql-mlops rollout --dataset_path data/demo --split train --output_dir runs/mock \\
        --generator mock --max_turns 3 --feedback_detail minimal
    text2sql-mlops rollout --dataset_path data/spider --output_dir runs/s1 --shard 1/2 ...
    text2sql-mlops rollout merge --inputs runs/s1 runs/s2 --output_dir runs/all

Flow: load the examples, keep ``[offset, offset + limit)``, keep every n-th one
for ``--shard i/n`` (positions i-1, i-1+n, ...), cut them into chunks of
``--chunk_size``. Each chunk goes through every turn of the repair loop
(``loop.py``) and is appended durably to the run folder
(``store.py``), so a killed run restarted with the same arguments
continues where it stopped. At the end the final files are written from those
records, with summary.json computed from the trajectories alone
(``metrics.py``); ``merge`` does the same from the shards' trajectories,
so shards merged equal the unsharded run.

Strict vs oracle: a configuration uses gold when its repair scope is ``verified``
or its feedback mode is ``result_status`` or ``oracle_rows``; summary.json keeps
``final_ex_oracle`` and ``final_ex_strict`` apart and names the configuration
behind each (see ``metrics.py``). The settings and their checks are ``config.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import typing
from dataclasses import replace
from typing import Any

from ..core.cliutil import ArgParser, add_flags, flag, from_args
from ..core.errors import UserError
from ..core.fileio import check_outputs
from ..core.records import Summary
from ..data.guard import exclude_leaks, load_eval_split
from ..data.load import default_tables_json, load_examples, take
from ..generation import backend_options, backends_with, create_generator, describe_options
from ..generation.repeat import RepeatGenerator
from .config import (
    GENERIC_OPTIONS,
    RolloutConfig,
    check,
    chunk_size_for,
    generator_options,
    ignored_flags,
    run_identity,
    sql_workers_for,
)
from .loop import RolloutEngine
from .metrics import rollout_summary, timing
from .store import RunFolder, output_dir, parse_shard, shards_of

# --------------------------------------------------------------------------- running


def select_examples(config: RolloutConfig) -> tuple[dict[str, Any], list[list[tuple[int, Any]]]]:
    """The run identity and the chunks of (dataset index, example) pairs this run processes."""
    examples = load_examples(config.dataset_path, config.db_root, config.split)
    if config.eval_dataset:
        examples = exclude_leaks(examples, load_eval_split(config.eval_dataset, config.eval_db_root, config.eval_split,
                                                                    config.eval_same_db_split), "rollout")
    selected = take(list(enumerate(examples)), config.offset, config.limit, config.spread)
    if not selected:
        # EX over no examples is no result: refuse instead of reporting 0.000 (an empty shard is fine).
        chosen = f"--offset {config.offset}" + (f" and --limit {config.limit}" if config.limit is not None else "")
        raise UserError(f"no examples to run: {chosen} select none of the "
                        f"{len(examples)} examples of {config.dataset_path}{' left after --eval_dataset' if config.eval_dataset else ''}")
    identity = run_identity(config, [example.id for _, example in selected])
    if config.shard:
        index, count = parse_shard(config.shard)
        selected = selected[index - 1::count]
    # Fixed slices of the selection: a resumed run cuts exactly the same chunks.
    return identity, [selected[start:start + config.chunk_size] for start in range(0, len(selected), config.chunk_size)]


def run_rollout(config: RolloutConfig, generator=None, repair_generator=None, command: str = "rollout") -> Summary:
    """Run (or resume, or find complete) the rollout ``config`` describes; returns its summary.json.

    ``generator`` replaces the one ``config.generator`` names (tests pass wrappers), and
    ``repair_generator`` the repair turns' (``--repair_adapter_path``; else ``generator`` answers them).
    ``command``: whose folder it is (``eval`` marks its folders so that nothing mines or trains on them).
    """
    started = time.perf_counter()
    check(config)
    config = replace(config, tables_json=config.tables_json or default_tables_json(config.dataset_path, config.split),
                     chunk_size=chunk_size_for(config))
    identity, chunks = select_examples(config)
    with RunFolder(config.output_dir, command) as folder:
        return _run_locked(config, folder, identity, chunks, generator, repair_generator, started)


def _run_locked(config: RolloutConfig, folder: RunFolder, identity: dict[str, Any], chunks: list, generator, repair_generator,
                started: float) -> Summary:
    from tqdm import tqdm

    finished = folder.prepare(identity, config.overwrite)
    if finished is None:
        print(f"rollout: {config.output_dir} is complete; nothing to do", file=sys.stderr)
        return folder.summary()
    done = {record["chunk"]: record for record in finished}
    for number, record in done.items():
        if number >= len(chunks) or record["ids"] != [example.id for _, example in chunks[number]]:
            raise UserError(f"{folder.work}: chunk {number} does not belong to this run; delete the file to start over")
    print(f"rollout: {json.dumps(identity)}", file=sys.stderr)
    if config.num_samples > 1 and config.temperature == 0:
        print("rollout: note: temperature 0 is greedy, so all samples of a prompt are the same", file=sys.stderr)

    own_generator = generator is None
    if own_generator and (ignored := ignored_flags(config)):
        print(f"rollout: note: the {config.generator} generator has no option for {', '.join('--' + f for f in ignored)}; "
              "ignored", file=sys.stderr)
    generator = generator or create_generator(config.generator, **generator_options(config))
    own_repair_generator = repair_generator is None and (config.repair_adapter_path is not None or config.repair_prompts_only)
    if own_repair_generator:
        try:
            repair_generator = RepeatGenerator() if config.repair_prompts_only else \
                create_generator(config.generator, **generator_options(config, repair=True))
        except BaseException:
            if own_generator:
                generator.close()
            raise
    claimed = bool(finished)  # a resumed run's folder is already its own
    sql_workers = sql_workers_for(config, generator.frees_cpu)
    engine = RolloutEngine(config, generator, config.tables_json, sql_workers=sql_workers, repair_generator=repair_generator)
    total, finished_examples = sum(map(len, chunks)), sum(len(r["ids"]) for r in done.values())
    bar = tqdm(total=total, initial=finished_examples, unit="ex",
               desc="rollout", file=sys.stderr, disable=not config.progress, dynamic_ncols=True)
    todo = [(number, chunk) for number, chunk in enumerate(chunks) if number not in done]
    try:
        # Two chunks in flight when SQL runs in worker threads (one's SQL during the other's generation).
        last = time.perf_counter()
        for number, trajectories, generation_s in engine.run_chunks(todo, in_flight=2 if sql_workers else 1):
            # elapsed_s: the wall time since the previous chunk finished, so the chunks' times add up
            # to the run's even though two of them overlap.
            now = time.perf_counter()
            done[number] = {"chunk": number, "ids": [example.id for _, example in chunks[number]],
                            "elapsed_s": now - last, "generation_s": generation_s, "trajectories": trajectories}
            last = now
            chunk = chunks[number]
            if not claimed:
                # Only with a first result: a run that fails before it leaves the folder as it was.
                folder.claim(identity, config.overwrite)
                claimed = True
            folder.append_chunk(done[number])
            bar.set_postfix(EX=_running_ex(done), refresh=False)
            bar.update(len(chunk))
            finished_examples, before = finished_examples + len(chunk), finished_examples
            if config.progress_every and (finished_examples // config.progress_every > before // config.progress_every
                                          or finished_examples == total):
                print(f"rollout: {finished_examples}/{total} examples, final EX so far {_running_ex(done)}, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        bar.close()
        engine.close()
        if own_generator:
            generator.close()
        if own_repair_generator:
            repair_generator.close()
    if not claimed:  # nothing was left to compute
        folder.claim(identity, config.overwrite)
    return _finish(folder, identity, [done[number] for number in sorted(done)], started, resumed=len(finished))


def _running_ex(done: dict[int, dict]) -> str:
    """Final EX so far (at least one correct candidate in the last turn), for the progress bar."""
    finals = [t.last.any_correct for r in done.values() for t in r["trajectories"]]
    return f"{sum(finals) / len(finals):.3f}"


def _finish(folder: RunFolder, identity: dict[str, Any], records: list[dict], started: float, resumed: int) -> Summary:
    """Write the final files from the chunk records (or shards' timing records); returns summary.json."""
    trajectories = [t for record in records for t in record["trajectories"]]
    summary = rollout_summary(trajectories, identity)
    summary.timing = timing(
        examples=len(trajectories), tokens=summary.generated_tokens,
        rollout_s=sum(r["elapsed_s"] for r in records), generation_s=sum(r["generation_s"] for r in records),
        wall_s=time.perf_counter() - started, resumed_chunks=resumed,
    )
    folder.finish(trajectories, summary)
    return summary


def merge_runs(inputs: list[str], output_dir: str, overwrite: bool = False) -> Summary:
    """Recombine finished shards into the files the unsharded run writes; returns summary.json."""
    started = time.perf_counter()
    # --overwrite discards another run's files, never a shard this merge reads.
    check_outputs((("--output_dir", output_dir),), inputs)
    folders = [RunFolder(path) for path in inputs]
    for folder in folders:
        folder.check_complete()
    identity = shards_of(folders)
    trajectories = sorted((t for folder in folders for t in folder.trajectories()), key=lambda t: t.index)
    if len({t.index for t in trajectories}) != len(trajectories) or len(trajectories) != identity["examples"]:
        raise UserError(f"the shards hold {len(trajectories)} trajectories for {identity['examples']} examples; "
                        "were they run with the same dataset?")
    # One record holding every trajectory, timed as the sum of the shards' times.
    timings = [folder.summary().timing for folder in folders]
    record = {"trajectories": trajectories, "elapsed_s": sum(t["rollout_s"] for t in timings),
              "generation_s": sum(t["generation_s"] for t in timings)}
    with RunFolder(output_dir) as out:
        out.prepare(identity, overwrite)
        out.claim(identity, overwrite)
        return _finish(out, identity, [record], started, resumed=0)


# --------------------------------------------------------------------------- command line


class _KeepEpilogLines(argparse.HelpFormatter):
    """Wraps the description as usual; keeps the epilog (the generators' options) line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return text if "\n" in text else super()._fill_text(text, width, indent)


def make_parser(prog: str | None = "text2sql-mlops rollout") -> argparse.ArgumentParser:
    parser = ArgParser(prog=prog, formatter_class=_KeepEpilogLines, epilog=describe_options(), description=(
        "Generate SQL, execute it, feed errors back and repair, up to --max_turns; write trajectories.jsonl, "
        "grpo_rollouts.jsonl and summary.json. Resumable: run it again with the same arguments. "
        f"`{prog} merge --inputs DIR ... --output_dir OUT` recombines --shard runs."))
    add_flags(parser, RolloutConfig)  # every setting's flag, help and default: config.py
    hints = typing.get_type_hints(RolloutConfig)
    generation = parser.add_argument_group("generation flags (each reaches the generators that declare it)")
    for name, option in GENERIC_OPTIONS.items():
        # Help from the backends' own declarations, so the parser names no backend itself.
        owners = backends_with(option)
        helps = {owner: backend_options(owner)[option].metadata["help"].replace("%", "%%") for owner in owners}
        said = (f"{'/'.join(owners)}: {next(iter(helps.values()))}" if len(set(helps.values())) == 1
                else "; ".join(f"{owner}: {text}" for owner, text in helps.items()))  # backends that mean it differently
        kind = next(a for a in typing.get_args(hints[name]) if a is not type(None))  # int | None -> int
        flag(generation, name, *(["--model"] if name == "model_path" else []), type=kind,
             help=f"{said} (ignored by other generators)")
    flag(generation, "generator_option", action="append", default=[], metavar="KEY=VALUE",
         help="an option of the chosen generator (repeatable; see below)")
    flag(parser, "no_progress", action="store_true", help="no progress bar on stderr")
    return parser


def make_merge_parser(prog: str | None = "text2sql-mlops rollout merge") -> argparse.ArgumentParser:
    parser = ArgParser(prog=prog, description="Recombine the output folders of --shard i/n runs "
                     "into the files the unsharded run writes (summary recomputed from the trajectories).")
    flag(parser, "inputs", nargs="+", required=True, metavar="DIR", help="the shards' --output_dir folders")
    flag(parser, "output_dir", "--out", required=True, type=output_dir, help="folder for the merged outputs")
    flag(parser, "overwrite", action="store_true", help="discard another run's files in --output_dir")
    return parser


def config_from_args(args: argparse.Namespace) -> RolloutConfig:
    return from_args(RolloutConfig, args, generator_option=tuple(args.generator_option), progress=not args.no_progress)


HEADLINE = ("examples", "first_turn_ex", "final_ex_strict", "final_ex_oracle", "candidate_ex", "executable_rate", "bad_gold")


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops rollout") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        args = make_merge_parser(f"{prog} merge").parse_args(argv[1:])
        summary = merge_runs(args.inputs, args.output_dir, args.overwrite)
    else:
        args = make_parser(prog).parse_args(argv)
        summary = run_rollout(config_from_args(args))
    print(json.dumps({"output_dir": args.output_dir, **{key: getattr(summary, key) for key in HEADLINE}, "timing": summary.timing}))
    return 0
