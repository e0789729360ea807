"""The schema part of a prompt: which tables it shows (``PromptConfig``) and their text.

The rollout, ``pairs synth``, ``train sft`` and the repair examples all call
``prompt_schema`` with the same ``PromptConfig``, so a question always comes with the
same tables and the same schema text, at training and at inference.
``PromptConfig.prompt_style`` names the message layout (``prompts.py``'s business): it
travels here so that one config carries every prompt setting to every command.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..core.cliutil import setting
from ..core.errors import UserError
from ..sql.catalog import load_catalog
from .render import SCHEMA_FORMATS, schema_text
from .retrieval import MODES, select_tables

PROMPT_STYLES = ("chat", "seed")  # the message layouts of prompts.py (chat: ours; seed: the reference project's)

# The prompt settings as every command that builds prompts (rollout, eval, pairs synth, train
# sft) takes them: default, help, argparse options. Declared here once; a command's settings
# class declares each field with prompt_setting(name), so its flag reads the same everywhere.
PROMPT_SETTINGS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "schema_mode": ("bm25_fk", "which tables the prompt shows: full, retrieved, bm25 or bm25_fk", {}),
    "top_k_tables": (6, "tables a ranking mode keeps", {"type": int}),
    "fk_hops": (1, "foreign-key hops added to the ranked tables (bm25_fk)", {"type": int}),
    "sample_rows": (0, "sample rows per table (create_table format)", {"type": int}),
    "schema_format": ("create_table", "create_table, compact or seed", {}),
    "sample_values": (0, "distinct values shown per text column, those the question mentions first", {"type": int}),
    "prompt_style": ("chat", "chat (ours: a chat history, ```sql answers) or seed (the reference project's "
                             "one-message prompts and repairs, SQL: answers)", {}),
}


def prompt_setting(name: str) -> Any:
    """The dataclass field of prompt setting ``name`` (its default, help and flag options)."""
    default, help_text, options = PROMPT_SETTINGS[name]
    return setting(default, help_text, **options)


@dataclass(frozen=True)
class PromptConfig:
    """How the schema part of a prompt is chosen (see ``retrieval.py``) and written (``render.py``)."""

    schema_mode: str = prompt_setting("schema_mode")  # retrieval.MODES
    top_k_tables: int = prompt_setting("top_k_tables")
    fk_hops: int = prompt_setting("fk_hops")
    sample_rows: int = prompt_setting("sample_rows")
    schema_format: str = prompt_setting("schema_format")  # render.SCHEMA_FORMATS
    sample_values: int = prompt_setting("sample_values")
    prompt_style: str = prompt_setting("prompt_style")  # PROMPT_STYLES

    @classmethod
    def of(cls, settings: Any) -> PromptConfig:
        """The prompt settings of a command's config (rollout, synth, train sft: same field names)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def check(self) -> PromptConfig:
        """One-line errors, in the flags' names, for settings no prompt could use."""
        for name, minimum in (("top_k_tables", 1), ("fk_hops", 0), ("sample_rows", 0), ("sample_values", 0)):
            if getattr(self, name) < minimum:
                raise UserError(f"--{name} must be at least {minimum}, got {getattr(self, name)}")
        for name, choices in (("schema_mode", MODES), ("schema_format", SCHEMA_FORMATS), ("prompt_style", PROMPT_STYLES)):
            if getattr(self, name) not in choices:
                raise UserError(f"--{name} {getattr(self, name)!r} is not one of: {', '.join(choices)}")
        return self


@dataclass(frozen=True)
class PromptSchema:
    """The tables a prompt shows (catalog spelling, catalog order) and their schema text."""

    tables: tuple[str, ...]
    text: str


def prompt_schema(
    db_path: str, question: str, config: PromptConfig, tables_json: str | None = None, db_id: str | None = None
) -> PromptSchema:
    """The tables retrieval picks for ``question`` and their schema text (catalogs are cached)."""
    catalog = load_catalog(db_path, tables_json, db_id)
    chosen = {catalog.table(name).name for name in select_tables(catalog, question, config.schema_mode, top_k=config.top_k_tables, fk_hops=config.fk_hops)}
    tables = tuple(name for name in catalog.table_names if name in chosen)
    text = schema_text(catalog, tables, sample_rows=config.sample_rows, schema_format=config.schema_format,
                       sample_values=config.sample_values, question=question)
    return PromptSchema(tables=tables, text=text)
