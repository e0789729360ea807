"""The clean-split guard: evaluation examples never reach mining, pairs or training.

An evaluation set (the split the pipeline evaluates on) is reduced to keys that
metadata edits cannot hide:

* example ids;
* questions, normalised: case folded, punctuation dropped, whitespace collapsed
  (``question_words``), so "What is the average age?" and "what is the average
  age." are the same question;
* databases, by the fingerprint of their schema (``schema_fingerprint``: the
  lowercased, sorted table and column names read from the SQLite file), never by
  name, so a copy of an evaluation database under another name and in another
  folder is still an evaluation database.

A training record leaks when ANY of these holds:

* its id is an evaluation example's id;
* an evaluation question, as normalised words, ends its question or a line of any
  message (its words may run over earlier lines) of the prompts that would be trained on (every turn of a trajectory, the
  prompt of a pair: a prompt's question ends its line), so editing ``id``, ``db_id``
  or ``question`` does not hide an evaluation example whose prompts were kept;
* its database has the schema of an evaluation database. (Spider's train and dev
  databases are disjoint by design; holding out whole databases is also how
  generalisation is estimated on the train split.)

Records are ``records.Example`` (``db_path``), ``Trajectory`` (``id``, ``db_id``,
``question``, ``turns[].messages``) or ``Pair`` (``prompt``; ``example_id``, ``db_id``,
``question`` under ``meta``). Trajectories and pairs name their database by ``db_id`` only; the
file is looked up as ``<root>/<db_id>/<db_id>.sqlite`` or ``<root>/<db_id>.sqlite``
in the training database folders (``--db_root``, then those a rollout folder's
run.json names), and only when no training folder has it, in the evaluation
set's own database folders (Spider keeps train and dev databases side by side).
A record whose database cannot be found is an error: the guard never passes what
it could not check. An empty evaluation set is an error for the same reason.

``rollout`` and ``pairs synth`` pick training examples from a split and leave the
overlapping ones out (``exclude_leaks``, with a count); ``pairs mine``, ``pairs
merge`` and ``train`` refuse any leaking record before writing anything
(``refuse_leaks``): by then a leak is a bug, not a selection.

Cost: fingerprints are cached per file (path, modification time and size);
questions are indexed by their word tuples, so scanning a prompt is one pass to cut
each line into words and one set lookup per distinct question length; identical
messages (repair turns repeat the first prompt) are scanned once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.cliutil import flag, setting
from ..core.errors import UserError
from ..core.fileio import marked_command
from ..core.records import Example, Pair, Trajectory
from ..sql.catalog import load_catalog
from .load import db_candidates, load_examples

# The guard's flags, as every command that reads training inputs takes them (rollout, pairs
# synth, mine and merge, train sft and dpo): default, help, argparse options. Declared here
# once: settings classes declare the fields with guard_setting(name), other parsers call
# add_guard_flags.
EVAL_GUARD_SETTINGS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "eval_dataset": (None, "the evaluation set (JSON, JSONL or Spider-layout folder): inputs that share an example, "
                           "a question or a database with it are left out or refused", {"metavar": "PATH"}),
    "eval_split": ("dev", "split of a Spider-layout --eval_dataset", {}),
    "eval_same_db_split": (None, "another split of --eval_dataset asked of the training databases (e.g. "
                                 "test_same_db): guarded by example and question, not by database", {}),
    "eval_db_root": (None, "database folder of --eval_dataset (default: next to it)", {"metavar": "DIR"}),
}


def guard_setting(name: str) -> Any:
    """The dataclass field of guard setting ``name`` (default, help and flag options)."""
    default, help_text, options = EVAL_GUARD_SETTINGS[name]
    return setting(default, help_text, **options)


def add_guard_flags(parser) -> None:
    """The guard's four flags, for a parser without a settings class."""
    for name, (default, help_text, options) in EVAL_GUARD_SETTINGS.items():
        shown = "" if default is None else " (default: %(default)s)"
        flag(parser, name, default=default, help=help_text + shown, **options)

_WORD = re.compile(r"\w+")


def question_words(text: str) -> tuple[str, ...]:
    """``text`` as the guard compares it: case-folded words, punctuation and spacing dropped."""
    return tuple(_WORD.findall(text.casefold()))


def normalize_question(question: str) -> str:
    return " ".join(question_words(question))


class QuestionIndex:
    """Finds a question that ENDS a line of a text, compared as normalised words.

    A prompt states its question at the end of a line ("Question: ..."), whatever else the
    message holds, so an evaluation question ending any line of a message is that prompt's
    question. Ending, not merely occurring: "How many students are there for each major?"
    is another question than "How many students are there?", and the demo's templates ask
    many questions that extend another. Questions are looked up by their word tuple, one
    set lookup per distinct question length and line.
    """

    def __init__(self, questions: Iterable[str]):
        self._questions: dict[tuple[str, ...], str] = {}
        for question in questions:
            words = question_words(question)
            if words:
                self._questions.setdefault(words, question)
        self._lengths = sorted({len(words) for words in self._questions})
        # The ends of questions (all but their first word): a line made of one may end a
        # question begun on the lines before it.
        self._ends = {words[start:] for words in self._questions for start in range(1, len(words))}

    def find(self, text: str) -> str | None:
        """A question (as given to the index) that ends a line of ``text``, or None.

        A question written over several lines (a dataset question holding a line break, a
        wrapped prompt) ends its last one: when a line's words are the end of a question,
        the words of the lines before it are read too.
        """
        earlier: list[tuple[str, ...]] = []
        for line in text.splitlines():
            words = question_words(line)
            if not words:
                continue  # the same line end as the line before, already looked at
            found = self._ending(words, 0)
            if found is None and earlier and words in self._ends:
                joined, back = words, len(earlier)
                while len(joined) < self._lengths[-1] and back:
                    back -= 1
                    joined = earlier[back] + joined
                found = self._ending(joined, len(words))
            if found is not None:
                return found
            earlier.append(words)
        return None

    def _ending(self, words: tuple[str, ...], longer_than: int) -> str | None:
        """A question longer than ``longer_than`` words that ends ``words``, or None."""
        for length in self._lengths:
            if length > len(words):
                break
            if length > longer_than:
                found = self._questions.get(words[len(words) - length:])
                if found is not None:
                    return found
        return None


# --------------------------------------------------------------------------- databases


def schema_fingerprint(db_path: str | Path) -> str:
    """The identity of a database's schema: a hash of its lowercased, sorted table and
    column names (read from the file: sqlite_master and PRAGMA table_info). Cached per file."""
    path = Path(db_path).resolve()
    if not path.is_file():
        raise UserError(f"database not found: {path}")
    stat = path.stat()
    return _fingerprint(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _fingerprint(path: str, mtime_ns: int, size: int) -> str:
    # mtime and size are only part of the key: a file rebuilt in place is read again.

    shape = sorted([table.name.lower(), sorted(column.name.lower() for column in table.columns)]
                   for table in load_catalog(path).tables)
    return hashlib.sha256(json.dumps(shape).encode("utf-8")).hexdigest()[:16]


def find_databases(db_id: str, roots: Iterable[str]) -> list[str]:
    """Every existing ``<root>/<db_id>/<db_id>.sqlite`` and ``<root>/<db_id>.sqlite``."""
    found: dict[str, None] = {}
    for root in roots:
        for candidate in db_candidates(db_id, root):
            if Path(candidate).is_file():
                found[str(Path(candidate))] = None
    return list(found)


def rollout_db_roots(paths: Iterable[str]) -> list[str]:
    """The database folders of the rollout runs behind ``paths`` (rollout folders or their
    trajectories.jsonl), as their run.json names them: ``db_root``, else the dataset's
    ``database`` folder. Paths given elsewhere (a bare JSONL) contribute nothing."""
    roots: dict[str, None] = {}
    for path in paths:
        given = Path(path)
        run = (given if given.is_dir() else given.parent) / "run.json"
        try:
            identity = json.loads(run.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(identity, dict):
            continue
        db_root, dataset = identity.get("db_root"), identity.get("dataset_path")
        if isinstance(db_root, str) and db_root:
            root = Path(db_root)
        elif isinstance(dataset, str) and dataset:
            root = Path(dataset) / "database" if Path(dataset).is_dir() else Path(dataset).parent / "database"
        else:
            continue
        if root.is_dir():
            roots[str(root)] = None
    return list(roots)


EVAL_COMMAND = "eval"  # the marker's command of a folder `eval` wrote (rollout/store.py marks it; a rollout's names none)


def refuse_evaluation_runs(paths: Iterable[str], where: str) -> None:
    """Trajectories that `eval` wrote (its folder's marker says so from its first chunk on, and
    its analysis.json beside them) are evaluation results, whichever split they ran on: mining
    or training on them is refused even when no --eval_dataset names the evaluation set for
    the content checks below."""
    for path in paths:
        given = Path(path)
        folder = given if given.is_dir() else given.parent
        if (folder / "analysis.json").is_file() or marked_command(folder) == EVAL_COMMAND:
            raise UserError(f"{where}: {path} is an `eval` output (its folder's marker says so); evaluation results "
                            "never become training data: run `rollout` over a training split for that")


# --------------------------------------------------------------------------- the evaluation set


@dataclass(frozen=True)
class EvalSplit:
    source: str  # how the user named it, for error messages
    ids: frozenset[str]
    questions: frozenset[str]  # normalised (normalize_question)
    db_ids: frozenset[str]  # names, for messages: databases match by schema
    schemas: Mapping[str, str] = field(default_factory=dict)  # schema fingerprint -> an evaluation db_id
    db_roots: tuple[str, ...] = ()  # the evaluation databases' folders: the last place a training db_id is looked up
    originals: Mapping[str, str] = field(default_factory=dict, compare=False)  # normalised -> as written

    @functools.cached_property
    def index(self) -> QuestionIndex:
        return QuestionIndex(self.questions)

    def find_question(self, text: str) -> str | None:
        """The evaluation question (as written) that ends a line of ``text``, or None."""
        found = self.index.find(text)
        return None if found is None else self.originals.get(found, found)


def load_eval_split(path: str, db_root: str | None = None, split: str = "dev", same_db_split: str | None = None) -> EvalSplit:
    """The keys of the evaluation set at ``path`` (JSON, JSONL or a Spider-layout folder's ``split``).

    ``same_db_split`` names a second evaluation split of the same folder whose questions are
    asked of the TRAINING databases (the demo's ``test_same_db``): its ids, questions and
    prompts are guarded like the first split's, its databases are not (training uses them).
    """
    if same_db_split and same_db_split.lower() not in ("none", "null"):  # params.yaml says none where there is none
        first, same_db = load_eval_split(path, db_root, split), load_eval_split(path, db_root, same_db_split)
        return replace(first, source=f"{first.source} + {same_db.source} (questions only)", ids=first.ids | same_db.ids,
                       questions=first.questions | same_db.questions, originals={**same_db.originals, **first.originals})

    examples = load_examples(path, db_root, split)
    source = f"{path} ({split})" if Path(path).is_dir() else str(path)
    if not examples:
        raise UserError(f"--eval_dataset {source} holds no examples, so the clean-split guard would check nothing; "
                        "give the evaluation set the pipeline evaluates on (for a Spider-layout folder, --eval_split picks its file)")
    schemas: dict[str, str] = {}
    roots: dict[str, None] = {}
    for example in examples:
        schemas.setdefault(schema_fingerprint(example.db_path), example.db_id)
        file = Path(example.db_path)
        roots[str(file.parent.parent if file.parent.name in (example.db_id, file.stem) else file.parent)] = None
    originals: dict[str, str] = {}
    for example in examples:
        originals.setdefault(normalize_question(example.question), example.question)
    return EvalSplit(
        source=source,
        ids=frozenset(example.id for example in examples),
        questions=frozenset(question for question in originals if question),
        db_ids=frozenset(example.db_id for example in examples),
        schemas=schemas,
        db_roots=tuple(roots),
        originals=originals,
    )


# --------------------------------------------------------------------------- records


Record = Example | Trajectory | Pair


def record_keys(record: Record) -> tuple[str, str, str]:
    """(example id, question, db_id) of an example, trajectory or pair."""
    if isinstance(record, Pair):
        return record.meta["example_id"], record.meta["question"], record.meta["db_id"]
    return record.id, record.question, record.db_id


def record_messages(record: Record) -> Iterator[tuple[str, str]]:
    """(where, text) of every prompt message a training stage would read from ``record``:
    the pair's prompt, each turn of a trajectory."""
    if isinstance(record, Pair):
        prompts = [("its prompt", record.prompt)]
    elif isinstance(record, Trajectory):
        prompts = [(f"turn {turn.turn}", turn.messages) for turn in record.turns]
    else:
        prompts = []
    for where, messages in prompts:
        for message in messages:
            if (text := _message_text(message)) is not None:
                yield f"a {message.get('role', 'prompt')} message of {where}", text


def _message_text(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, list):  # content parts ({"type": "text", "text": ...})
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else None


class _Checker:
    """Checks records against one evaluation set, resolving and fingerprinting each database
    and scanning each distinct message once."""

    def __init__(self, eval_split: EvalSplit, db_roots: Sequence[str] = ()):
        self.eval_split = eval_split
        self.db_roots = tuple(dict.fromkeys(str(root) for root in db_roots))
        self._databases: dict[str, tuple[list[str], str | None]] = {}
        self._texts: dict[str, str | None] = {}

    def find_question(self, text: str) -> str | None:
        if text not in self._texts:
            self._texts[text] = self.eval_split.find_question(text)
        return self._texts[text]

    def check(self, record: Record) -> tuple[str | None, str | None]:
        """(why ``record`` belongs to the evaluation set, why it could not be checked); each may be None."""
        example, question, db_id = record_keys(record)
        if example is not None and example in self.eval_split.ids:
            return f"example id {example} is an evaluation example", None
        database, unresolved = self.database_reason(record, db_id)
        if database:
            return database, None
        if isinstance(question, str) and (found := self.find_question(question)) is not None:
            same = normalize_question(question) == normalize_question(found)
            return (f"question {question!r} is an evaluation question" if same
                    else f"question {question!r} contains evaluation question {found!r}"), None
        for where, text in record_messages(record):
            if (found := self.find_question(text)) is not None:
                return f"{where} contains evaluation question {found!r}", None
        return None, unresolved

    def database_reason(self, record: Record, db_id: str) -> tuple[str | None, str | None]:
        explicit = record.db_path if isinstance(record, Example) else None
        if explicit:  # examples carry their resolved file
            paths = [explicit] if Path(explicit).is_file() else []
            if not paths:
                return None, f"its database file {explicit} does not exist"
        elif isinstance(db_id, str) and db_id.strip():
            paths, unresolved = self._resolve(db_id)
            if not paths:
                return None, unresolved
        else:
            return None, "it names no database (db_id; meta.db_id for pairs), so its schema cannot be compared"
        for path in paths:
            evaluation = self.eval_split.schemas.get(schema_fingerprint(path))
            if evaluation is not None:
                name = db_id if isinstance(db_id, str) else Path(path).stem
                if name == evaluation:
                    return f"database {name!r} is an evaluation database", None
                return f"database {name!r} ({path}) has the schema of evaluation database {evaluation!r}", None
        return None, None

    def _resolve(self, db_id: str) -> tuple[list[str], str | None]:
        if db_id not in self._databases:
            paths = find_databases(db_id, self.db_roots) or find_databases(db_id, self.eval_split.db_roots)
            searched = ", ".join(self.db_roots + self.eval_split.db_roots) or "no folder"
            self._databases[db_id] = (paths, None if paths else (
                f"its database {db_id!r} is not in {searched} (as <db_id>/<db_id>.sqlite or <db_id>.sqlite)"))
        return self._databases[db_id]


def leak_reason(record: Record, eval_split: EvalSplit, db_roots: Sequence[str] = ()) -> str | None:
    """Why ``record`` belongs to the evaluation set, or None when it does not.

    ``db_roots``: the training database folders a ``db_id`` is looked up in (before the
    evaluation set's own); a record whose database cannot be found is a ``UserError``.
    """
    reason, unresolved = _Checker(eval_split, db_roots).check(record)
    if unresolved:
        raise UserError(f"cannot check a record against the evaluation set {eval_split.source}: {unresolved}; "
                        "pass --db_root DIR, the folder holding the training databases")
    return reason


def refuse_leaks(records: Iterable[Record], eval_split: EvalSplit | None, where: str, what: str = "records",
                 db_roots: Sequence[str] = ()) -> None:
    """Raise one ``UserError`` line if any record belongs to ``eval_split`` (no-op when None),
    or, when none does, if the database of a record cannot be found in ``db_roots`` or the
    evaluation set's folders (it could not be checked)."""
    if eval_split is None:
        return
    checker = _Checker(eval_split, db_roots)
    leaks: list[tuple[int, str]] = []
    unchecked: tuple[int, str] | None = None
    for index, record in enumerate(records, start=1):
        reason, unresolved = checker.check(record)
        if reason:
            leaks.append((index, reason))
        elif unresolved and unchecked is None:
            unchecked = (index, unresolved)
    if leaks:
        index, reason = leaks[0]
        raise UserError(
            f"{where}: {len(leaks)} {what} belong to the evaluation set {eval_split.source} (first: #{index}, {reason}); "
            "evaluation examples must never reach training: train on another split or hold out other databases"
        )
    if unchecked:
        index, problem = unchecked
        raise UserError(f"{where}: cannot check {what} #{index} against the evaluation set {eval_split.source}: {problem}; "
                        "pass --db_root DIR, the folder holding the training databases")


def exclude_leaks(examples: list, eval_split: EvalSplit | None, where: str) -> list:
    """The examples (``records.Example``) that do not belong to ``eval_split``.

    For the stages that pick training examples from a split (rollout, pairs synth):
    an example sharing an id, a database schema or a question (also inside its own
    question) with the evaluation set is left out before anything is generated, and
    the count is reported on stderr. Stages downstream (mining, merging, training)
    refuse such records instead: by then a leak is a bug, not a selection.
    """
    if eval_split is None:
        return list(examples)
    checker = _Checker(eval_split)
    kept, left_out = [], []
    for example in examples:
        reason, unresolved = checker.check(example)
        if unresolved:  # load_examples resolved every db_path: only a file removed since
            raise UserError(f"{where}: cannot check example {example.id} against the evaluation set {eval_split.source}: {unresolved}")
        if reason:
            left_out.append(reason)
        else:
            kept.append(example)
    if left_out:
        print(f"{where}: left out {len(left_out)} of {len(examples)} examples that overlap the evaluation set "
              f"{eval_split.source} (first: {left_out[0]})", file=sys.stderr)
    return kept
