"""The typed method contract: each method declares its parameters once, as a frozen dataclass.

A method's parameter class lists every user-settable keyword (type, default, help text, allowed values and
range). The registry checks at import time that the method's keyword-only parameters and their defaults are
exactly these fields (plus the runtime ones in :data:`RUNTIME`), so the schema cannot drift from the code.
The CLI, the worker, the module and the provenance read the schema from here.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from ..errors import XAIError

RUNTIME = ("progress", "budget")  # set by the pipeline (a callback, a MemoryBudget), never by the user


def param(default: Any, help: str, *, choices: tuple | None = None, minimum=None, maximum=None):
    """A dataclass field of a method's parameter class, with its help text, choices and range."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class MethodParams:
    """Base of every method's parameter class (a frozen dataclass)."""

    @classmethod
    def names(cls) -> list[str]:
        """The parameter names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def schema(cls) -> list[dict]:
        """Each parameter as ``{name, type, default, help, choices, minimum, maximum}`` (JSON-able)."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            rows.append(
                {"name": f.name, "type": _type_name(hints[f.name]), "default": f.default, **f.metadata}
            )
        return rows

    @classmethod
    def check_names(cls, method: str, given) -> None:
        """A one-line error for the first name in ``given`` that is not a parameter of ``method``."""
        known = cls.names()
        for name in given:
            if name not in known:
                raise XAIError(
                    f"method '{method}' has no parameter '{name}'",
                    f"use one of: {', '.join(known) if known else '(none: this method takes no parameters)'}",
                )

    @classmethod
    def validate(cls, method: str, given: dict) -> MethodParams:
        """``given`` (a dict) checked for names, types, choices and ranges; the filled-in parameters."""
        cls.check_names(method, given)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in given:
                _check(method, f, hints[f.name], given[f.name])
        return cls(**given)

    @classmethod
    def parse(cls, method: str, items: list[str]) -> dict:
        """``KEY=VALUE`` strings (the CLI's ``--param``) as typed values, checked against the schema."""
        hints = typing.get_type_hints(cls)
        out: dict = {}
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or not key:
                raise XAIError(
                    f"--param '{item}' is not KEY=VALUE", "write it like --param rule=gausslegendre"
                )
            cls.check_names(method, [key])
            choices = next(f.metadata.get("choices") for f in dataclasses.fields(cls) if f.name == key)
            out[key] = text if choices and text in choices else _parse_value(text, hints[key])
        cls.validate(method, out)
        return out

    def to_dict(self) -> dict:
        """The parameters as a plain dict (JSON-able where the values are)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _options(hint) -> tuple:
    """The members of a union type (or the type itself)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _type_name(hint) -> str:
    return " | ".join("None" if o is type(None) else getattr(o, "__name__", str(o)) for o in _options(hint))


def _accepts(option, value) -> bool:
    if option is Any:
        return True
    if option is type(None):
        return value is None
    base = typing.get_origin(option) or option
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is tuple:
        return isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value)
    return isinstance(value, base)


def _check(method: str, f: dataclasses.Field, hint, value) -> None:
    if not any(_accepts(o, value) for o in _options(hint)):
        raise XAIError(
            f"parameter '{f.name}' of method '{method}' is {value!r}, not {_type_name(hint)}",
            f"give {f.name} as {_type_name(hint)} (default {f.default!r})",
        )
    choices, lo, hi = f.metadata.get("choices"), f.metadata.get("minimum"), f.metadata.get("maximum")
    if choices is not None and isinstance(value, str) and value not in choices:
        raise XAIError(
            f"parameter '{f.name}' of method '{method}' is '{value}'", f"use one of: {', '.join(choices)}"
        )
    numbers = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []
    if isinstance(value, (tuple, list)):
        numbers = [v for v in value if isinstance(v, (int, float))]
    for v in numbers:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            span = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
            raise XAIError(
                f"parameter '{f.name}' of method '{method}' is {value!r}", f"use a value in {span}"
            )


def _parse_value(text: str, hint):
    """A CLI string as the parameter's type: JSON where it parses, else the plain string."""
    options = _options(hint)
    if text.lower() in ("none", "null") and type(None) in options:
        return None
    if "," in text and any((typing.get_origin(o) or o) is tuple for o in options):
        text = "[" + text + "]"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if isinstance(value, list) and any((typing.get_origin(o) or o) is tuple for o in options):
        value = tuple(value)
    if (
        isinstance(value, (int, float, bool))
        and str in options
        and not any(_accepts(o, value) for o in options if o is not str)
    ):
        value = text  # e.g. a layer named "1"
    return value


def check_signature(name: str, fn, params: type[MethodParams]) -> None:
    """Raise ``TypeError`` (a developer error, at import) when ``fn``'s keywords differ from ``params``."""
    import inspect

    keywords = {
        k: p.default
        for k, p in inspect.signature(fn).parameters.items()
        if p.kind is p.KEYWORD_ONLY and k not in RUNTIME
    }
    declared = {f.name: f.default for f in dataclasses.fields(params)}
    if keywords != declared:
        raise TypeError(
            f"method '{name}': keyword parameters {keywords} differ from {params.__name__} {declared}"
        )
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
        raise TypeError(
            f"method '{name}' swallows unknown keywords (**kwargs); declare them in {params.__name__}"
        )
