"""Generic question templates, derived from a database's ``ENTITIES`` annotation.

Hand-written templates (each module's ``TEMPLATES``) make every database different;
these make every database alike: the same question shapes — counts, filters on a
value, numeric comparisons, aggregates, arg-max, group-by, lookups, joins along each
foreign key — asked of every annotated table in its own words. A model that learns
them on the training databases has something to transfer to an unseen one: the
shape is familiar, only the schema linking is new. Column phrases that differ from
column names (``yr_built`` asked as "year built") and literal values copied from the
data are where grounding is exercised.

``ENTITIES`` (one entry per table)::

    "hotel": {
        "one": "hotel", "many": "hotels",               # one row / several rows, in a question
        "label": ("name", "name", "names"),             # identifying column + phrases; None if none
        "text": {"city": ("city", "cities")},           # category columns -> (singular, plural) phrase
        "number": {"num_rooms": "number of rooms"},     # numeric columns -> phrase
        "links": {"owner_id": "owner"},                 # optional: FK column -> how the parent is named
    }

Each template has a list of phrasings; ``build.generate_questions`` picks one per
question with its seeded stream. Templates are plain data in the module format.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def _plural(phrase: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(phrase, tuple):
        return phrase
    if phrase.endswith("y") and phrase[-2:-1] not in "aeiou":
        return phrase, phrase[:-1] + "ies"
    if phrase.endswith(("s", "x", "ch", "sh")):
        return phrase, phrase + "es"
    return phrase, phrase + "s"


def _foreign_keys(con: sqlite3.Connection, table: str) -> list[tuple[str, str, str]]:
    """(column, referenced table, referenced column) of ``table``'s single-column foreign keys."""
    return [(row[3], row[2], row[4]) for row in con.execute(f"PRAGMA foreign_key_list({table})")]


def _template(category: str, questions: list[str], query: str, slots: str | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"category": category, "question": questions, "query": query, "generic": True}
    if slots is not None:
        template["slots"] = slots
    return template


def table_templates(table: str, entity: dict[str, Any]) -> list[dict[str, Any]]:
    """The single-table templates of one annotated table."""
    one, many = entity["one"], entity["many"]
    label = entity.get("label")
    texts = {column: _plural(phrase) for column, phrase in entity.get("text", {}).items()}
    numbers = entity.get("number", {})
    out = [_template("aggregate", [f"How many {many} are there?", f"Count the {many}.", f"What is the number of {many}?"],
                     f"SELECT COUNT(*) FROM {table}")]
    if label:
        column, name, names = label
        out.append(_template("where", [f"List the {names} of all {many}.", f"What are the {names} of the {many}?"],
                             f"SELECT {column} FROM {table}"))
    for text_column, (phrase, phrases) in texts.items():
        values = f"SELECT DISTINCT {text_column} AS value FROM {table}"
        out.append(_template("aggregate", [f"How many {many} have {phrase} {{value}}?",
                                           f"Count the {many} whose {phrase} is {{value}}."],
                             f"SELECT COUNT(*) FROM {table} WHERE {text_column} = '{{value}}'", values))
        out.append(_template("group_by", [f"How many {many} are there for each {phrase}?",
                                          f"Show each {phrase} and the number of {many} with it."],
                             f"SELECT {text_column}, COUNT(*) FROM {table} GROUP BY {text_column}"))
        out.append(_template("distinct", [f"What are the different {phrases} of the {many}?",
                                          f"List the distinct {phrases} of all {many}."],
                             f"SELECT DISTINCT {text_column} FROM {table}"))
        if label:
            column, name, names = label
            out.append(_template("where", [f"What are the {names} of the {many} whose {phrase} is {{value}}?",
                                           f"Which {many} have {phrase} {{value}}? Give their {names}."],
                                 f"SELECT {column} FROM {table} WHERE {text_column} = '{{value}}'", values))
            out.append(_template("where", [f"What is the {phrase} of the {one} with {name} {{label}}?",
                                           f"Give the {phrase} of the {one} whose {name} is {{label}}."],
                                 f"SELECT {text_column} FROM {table} WHERE {column} = '{{label}}'",
                                 f"SELECT {column} AS label FROM {table}"))
    for number_column, phrase in numbers.items():
        out.append(_template("aggregate", [f"What is the average {phrase} of the {many}?",
                                           f"What is the average {phrase} of all {many}?"],
                             f"SELECT AVG({number_column}) FROM {table}"))
        out.append(_template("aggregate", [f"What are the highest and the lowest {phrase} of the {many}?",
                                           f"Give the maximum and minimum {phrase} among all {many}."],
                             f"SELECT MAX({number_column}), MIN({number_column}) FROM {table}"))
        if label:
            column, name, names = label
            out.append(_template("order_limit", [f"Which {one} has the highest {phrase}? Give its {name}.",
                                                 f"What is the {name} of the {one} with the largest {phrase}?"],
                                 f"SELECT {column} FROM {table} ORDER BY {number_column} DESC LIMIT 1"))
            out.append(_template("order_limit", [f"Which {one} has the lowest {phrase}? Give its {name}.",
                                                 f"What is the {name} of the {one} with the smallest {phrase}?"],
                                 f"SELECT {column} FROM {table} ORDER BY {number_column} ASC LIMIT 1"))
            out.append(_template("where", [f"Which {many} have a {phrase} greater than {{x}}? Give their {names}.",
                                           f"List the {names} of the {many} whose {phrase} is above {{x}}."],
                                 f"SELECT {column} FROM {table} WHERE {number_column} > {{x}}",
                                 f"SELECT DISTINCT {number_column} AS x FROM {table}"))
            out.append(_template("where", [f"What is the {phrase} of the {one} with {name} {{label}}?",
                                           f"Give the {phrase} of the {one} named {{label}}."],
                                 f"SELECT {number_column} FROM {table} WHERE {column} = '{{label}}'",
                                 f"SELECT {column} AS label FROM {table}"))
        for text_column, (phrase_t, _) in list(texts.items())[:1]:
            out.append(_template("group_by", [f"What is the average {phrase} of the {many} for each {phrase_t}?",
                                              f"For each {phrase_t}, give the average {phrase} of the {many}."],
                                 f"SELECT {text_column}, AVG({number_column}) FROM {table} GROUP BY {text_column}"))
    return out


def join_templates(child: str, entities: dict[str, dict[str, Any]], con: sqlite3.Connection) -> list[dict[str, Any]]:
    """Templates along each foreign key of ``child`` to an annotated parent with a label."""
    out = []
    entity = entities[child]
    for fk_column, parent, parent_column in _foreign_keys(con, child):
        if parent not in entities or not entities[parent].get("label") or parent == child:
            continue
        parent_one = entity.get("links", {}).get(fk_column, entities[parent]["one"])
        p_column, p_name, p_names = entities[parent]["label"]
        join = f"FROM {child} AS T1 JOIN {parent} AS T2 ON T1.{fk_column} = T2.{parent_column}"
        labels = f"SELECT DISTINCT T2.{p_column} AS label {join}"
        many = entity["many"]
        out.append(_template("join", [f"How many {many} does the {parent_one} {{label}} have?",
                                      f"Count the {many} of the {parent_one} whose {p_name} is {{label}}."],
                             f"SELECT COUNT(*) {join} WHERE T2.{p_column} = '{{label}}'", labels))
        out.append(_template("group_by", [f"How many {many} does each {parent_one} have? Show the {p_name} and the count.",
                                          f"For each {parent_one}, give its {p_name} and the number of {many}."],
                             f"SELECT T2.{p_column}, COUNT(*) {join} GROUP BY T2.{p_column}"))
        if entity.get("label"):
            c_column, c_name, c_names = entity["label"]
            out.append(_template("join", [f"What are the {c_names} of the {many} of the {parent_one} {{label}}?",
                                          f"List the {c_names} of the {many} whose {parent_one} is {{label}}."],
                                 f"SELECT T1.{c_column} {join} WHERE T2.{p_column} = '{{label}}'", labels))
            out.append(_template("join", [f"Which {parent_one} does the {entity['one']} {{child}} belong to? Give the {p_name}.",
                                          f"What is the {p_name} of the {parent_one} of the {entity['one']} {{child}}?"],
                                 f"SELECT T2.{p_column} {join} WHERE T1.{c_column} = '{{child}}'",
                                 f"SELECT T1.{c_column} AS child {join}"))
        summable = [(c, phrase) for c, phrase in entity.get("number", {}).items() if "year" not in phrase]  # a total of years means nothing
        for number_column, phrase in summable[:1]:
            out.append(_template("join", [f"What is the total {phrase} of the {many} of the {parent_one} {{label}}?",
                                          f"Give the sum of the {phrase} of all {many} whose {parent_one} is {{label}}."],
                                 f"SELECT SUM(T1.{number_column}) {join} WHERE T2.{p_column} = '{{label}}'", labels))
    return out


def generic_templates(con: sqlite3.Connection, entities: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every generic template of a database, tables in annotation order, joins after."""
    templates = [t for table, entity in entities.items() for t in table_templates(table, entity)]
    templates += [t for table in entities for t in join_templates(table, entities, con)]
    return templates
