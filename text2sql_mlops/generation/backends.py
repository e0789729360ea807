"""The backends by name: which generator and options dataclass each name stands for.

Callers ask which options a backend has (``backend_options``) instead of knowing
backends by name, so one profile can drive any of them; ``create_generator`` builds one.
A backend's module is imported only when it is used, so choosing ``mock`` never imports
torch; its options live in a module without torch (hf's in hf_options.py).
"""

from __future__ import annotations

import importlib
import typing
from dataclasses import MISSING, Field, fields
from typing import Any

from ..core.errors import UserError
from .base import Generator

# name -> (generator "module:Class", options "module:Class"), imported lazily so that `mock`
# never pulls in torch. Options live in modules without torch (hf's in hf_options.py), so
# checking or listing them costs nothing.
_BACKENDS = {
    "mock": ("text2sql_mlops.generation.mock:MockGenerator", "text2sql_mlops.generation.mock:MockOptions"),
    "hf": ("text2sql_mlops.generation.hf:HFGenerator", "text2sql_mlops.generation.hf_options:HFOptions"),
    "openai": ("text2sql_mlops.generation.openai_compat:OpenAIGenerator", "text2sql_mlops.generation.openai_compat:OpenAIOptions"),
    "vllm": ("text2sql_mlops.generation.vllm_backend:VLLMGenerator", "text2sql_mlops.generation.vllm_backend:VLLMOptions"),
}


def generator_names() -> list[str]:
    return sorted(_BACKENDS)


def _load(target: str) -> Any:
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def _backend(name: str) -> tuple[str, str]:
    if name not in _BACKENDS:
        raise UserError(f"unknown generator {name!r}; choose one of: {', '.join(generator_names())}")
    return _BACKENDS[name]


def backend_options(name: str) -> dict[str, Field]:
    """The options generator ``name`` declares, by name, in declaration order."""
    return {f.name: f for f in fields(_load(_backend(name)[1]))}


def batches_internally(name: str) -> bool:
    """Whether generator ``name`` schedules many requests itself (its options class says
    ``BATCHES_INTERNALLY = True``), so a rollout should send it every pending prompt at once."""
    return bool(getattr(_load(_backend(name)[1]), "BATCHES_INTERNALLY", False))


def backends_with(option_name: str) -> list[str]:
    """The generators that declare ``option_name`` (for help texts and capability checks)."""
    return [name for name in generator_names() if option_name in backend_options(name)]


def _type_name(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return " or ".join(a.__name__ for a in args) if args else getattr(hint, "__name__", str(hint))


def parse_option(name: str, item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (a ``--generator_option``) as generator ``name`` types it; an unknown key
    or an unreadable value is one error line naming what the backend accepts."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise UserError(f"--generator_option must look like KEY=VALUE, got {item!r}")
    declared = backend_options(name)
    if key not in declared:
        raise UserError(f"--generator_option {key}: the {name} generator has no such option; its options: "
                        f"{', '.join(declared) or 'none'}")
    hint = typing.get_type_hints(_load(_backend(name)[1]))[key]
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional and text.strip().lower() in {"none", "null"}:
        return key, None
    kind = next((a for a in args if a is not type(None)), hint)  # int | None -> int
    try:
        if kind is bool:
            if text.strip().lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return key, text.strip().lower() in {"true", "1", "yes"}
        return key, kind(text)
    except ValueError:
        raise UserError(f"--generator_option {item}: the {name} generator's {key} is a {_type_name(hint)}"
                        f"{' (or none)' if optional else ''}") from None


def describe_options() -> str:
    """Every backend's options with type, default and help: the rollout's --help epilog."""
    lines = ["generator options (--generator_option KEY=VALUE; a generation flag a backend lacks is ignored):"]
    for name in generator_names():
        declared = backend_options(name)
        hints = typing.get_type_hints(_load(_backend(name)[1]))
        lines.append(f"  {name}:{'' if declared else ' none'}")
        for key, f in declared.items():
            default = "" if f.default is MISSING or f.default is None else f", default {f.default}"
            lines.append(f"    {key} ({_type_name(hints[key])}{default}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def create_generator(name: str, **options: Any) -> Generator:
    """Generator ``name`` built from keyword ``options`` (checked against its options dataclass)."""
    generator_target, options_target = _backend(name)
    declared = backend_options(name)
    unknown = sorted(set(options) - set(declared))
    if unknown:
        raise UserError(f"{name} generator: unknown option(s) {', '.join(unknown)}; known: {', '.join(declared) or 'none'}")
    return _load(generator_target)(_load(options_target)(**options))
