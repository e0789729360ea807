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

from ..core.errors import UserError
from ..sql.catalog import load_catalog
from .render import SCHEMA_FORMATS, schema_text
from .retrieval import MODES, select_tables

PROMPT_STYLES = ("chat", "seed")  # the message layouts of prompts.py (chat: ours; seed: the reference project's)


@dataclass(frozen=True)
class PromptConfig:
    """How the schema part of a prompt is chosen (see ``retrieval.py``) and written (``render.py``)."""

    schema_mode: str = "bm25_fk"
    top_k_tables: int = 6
    fk_hops: int = 1
    sample_rows: int = 0
    schema_format: str = "create_table"  # render.SCHEMA_FORMATS: create_table | compact | seed
    sample_values: int = 0  # distinct values per text column shown in the schema (question's first)
    prompt_style: str = "chat"  # prompts.PROMPT_STYLES: chat | seed (the reference project's layout)

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
