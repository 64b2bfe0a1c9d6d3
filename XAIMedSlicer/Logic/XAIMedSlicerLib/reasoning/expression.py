"""A safe expression language for rule conditions: a small whitelist of Python's syntax, never ``eval``.

A condition is parsed with :func:`ast.parse` and only these nodes are accepted: ``and``/``or``/``not``,
comparisons (``== != < <= > >= in not in is is not``), ``+ - * /``, unary minus, numbers, strings, ``True``,
``False``, ``None``, lists/tuples of those, names of known variables, subscripts (``cannot_hold["lesion"]``)
and calls of the whitelisted functions (``share_in``, ``abs``, ``min``, ``max``). Anything else
(attributes, lambdas, comprehensions, unknown names or functions, keyword arguments) is rejected when
the rule file is loaded, with a one-line :class:`XAIError`. An ordering comparison with ``None`` (a
check that was not run) is False, so a rule about a missing number does not fire.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

from ..errors import XAIError

FUNCTIONS: dict[str, Callable] = {"abs": abs, "min": min, "max": max}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_CONSTANT_TYPES = (str, int, float, bool, type(None))


def parse_condition(text: str, names: set[str], functions: set[str], *, rule: str = "?") -> ast.Expression:
    """Parse ``text`` and check every node against the whitelist; returns the checked tree."""
    if not isinstance(text, str) or not text.strip():
        raise XAIError(
            f"rule '{rule}' has an empty condition", "write a condition such as 'confidence < 0.6'"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise XAIError(
            f"rule '{rule}': condition is not a valid expression ({exc.msg})",
            "use comparisons joined by and/or, e.g. 'outside_share >= 0.6'",
        ) from None
    for node in ast.walk(tree):
        _check_node(node, names, functions, rule)
    return tree


def _check_node(node: ast.AST, names: set[str], functions: set[str], rule: str) -> None:
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.Compare,
        ast.BinOp,
        ast.Constant,
        ast.List,
        ast.Tuple,
        ast.Name,
        ast.Load,
        ast.Subscript,
        ast.Call,
        *_COMPARE,
        *_BINARY,
    )
    if not isinstance(node, allowed):
        raise XAIError(
            f"rule '{rule}': '{type(node).__name__}' is not allowed in a condition",
            "use only variables, numbers, strings, comparisons, and/or/not and share_in/abs/min/max",
        )
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
        raise XAIError(f"rule '{rule}': constant {node.value!r} is not allowed", "use numbers or strings")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in functions or node.keywords:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise XAIError(
                f"rule '{rule}': call of '{called}' is not allowed",
                f"call only {', '.join(sorted(functions))} with positional arguments",
            )
    elif isinstance(node, ast.Name) and node.id not in names and node.id not in functions:
        raise XAIError(
            f"rule '{rule}': unknown name '{node.id}' in the condition",
            "use a fact variable or a constant listed in the rules file",
        )


def evaluate(tree: ast.Expression, namespace: Mapping[str, object], functions: Mapping[str, Callable]):
    """Value of a checked tree over ``namespace``; a type error becomes a one-line XAIError."""
    try:
        return _eval(tree.body, namespace, functions)
    except (TypeError, KeyError, IndexError, ZeroDivisionError) as exc:
        raise XAIError(
            f"condition '{ast.unparse(tree)}' cannot be evaluated ({type(exc).__name__}: {exc})",
            "compare values of the same type and index constants with keys they have",
        ) from None


def _eval(node: ast.AST, ns: Mapping[str, object], fns: Mapping[str, Callable]):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return ns[node.id] if node.id in ns else fns[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, ns, fns) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        value = is_and
        for operand in node.values:  # short-circuit like Python
            value = _eval(operand, ns, fns)
            if bool(value) != is_and:
                return value
        return value
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, ns, fns)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, ns, fns), _eval(node.right, ns, fns))
    if isinstance(node, ast.Subscript):
        return _eval(node.value, ns, fns)[_eval(node.slice, ns, fns)]
    if isinstance(node, ast.Call):
        return fns[node.func.id](*[_eval(a, ns, fns) for a in node.args])
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ns, fns)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, ns, fns)
            if isinstance(op, _ORDERING) and (left is None or right is None):
                return False
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise AssertionError(f"unchecked node {type(node).__name__}")  # parse_condition rejects it first
