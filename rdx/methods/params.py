"""The parameters of each registered method, and the check that a configuration names only those.

An estimator's ``__init__`` signature is the one source of its parameters and their defaults: configs
list only what differs (conf/method/, conf/baselines/), and the CLI builds its config schema from
:func:`method_parameters`.

Light on purpose: the signatures are read from the estimators' source files, not by importing them
(torch, scikit-learn), so that a misspelt key fails within a second. A default the source does not
spell as a literal or a module constant is read by importing the estimator instead.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rdx.methods import METHODS

__all__ = ["Parameter", "check_method_params", "method_parameters"]


@dataclass(frozen=True)
class Parameter:
    """One ``__init__`` parameter: its name, default and type annotation as written ("" when none)."""

    name: str
    default: Any
    annotation: str


def method_parameters(name: str) -> dict[str, Parameter]:
    """The parameters of the method registered under ``name``, in signature order."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    return dict(_parameters(METHODS[name]))


def check_method_params(name: str, params: Mapping[str, Any], where: str | None = None) -> None:
    """Raise ValueError when ``params`` holds a key that is not a parameter of method ``name``.

    The message names each unknown key (with the closest parameter, when one is close), lists the
    valid parameters and says where they are documented; ``where`` (e.g. "method.params") prefixes it.
    """
    valid = method_parameters(name)
    unknown = [str(key) for key in params if key not in valid]
    if not unknown:
        return
    guesses = []
    for key in unknown:
        close = difflib.get_close_matches(key, list(valid), n=1)
        guesses.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    module, _, attribute = METHODS[name].partition(":")
    subject = f"{where} ({name})" if where else f"method {name!r}"
    noun = "parameter" if len(unknown) == 1 else "parameters"
    raise ValueError(
        f"{subject} has no {noun} {', '.join(guesses)}. Valid parameters of {name}: {', '.join(valid)} "
        f"(documented in the docstring of {module}.{attribute})"
    )


class _NotStatic(Exception):
    """The source does not spell this as something :mod:`ast` can read without running it."""


@cache
def _parameters(target: str) -> tuple[tuple[str, Parameter], ...]:
    """The ``__init__`` parameters of ``"module:Class"``: from its source, else by importing it."""
    module, _, attribute = target.partition(":")
    try:
        parameters = _static_parameters(module, attribute)
    except _NotStatic:
        parameters = _imported_parameters(module, attribute)
    return tuple((parameter.name, parameter) for parameter in parameters)


def _imported_parameters(module: str, attribute: str) -> list[Parameter]:
    cls = getattr(importlib.import_module(module), attribute)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    return [
        Parameter(p.name, p.default, _annotation_text(p.annotation))
        for p in parameters
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _annotation_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _static_parameters(module: str, attribute: str) -> list[Parameter]:
    found = _class_node(module, attribute)
    if found is None:
        raise _NotStatic(f"{module}:{attribute}")
    init = next((f for f in found[1].body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    if init is None:
        if _is_dataclass(found[1]):
            return _dataclass_parameters(module, attribute)
        raise _NotStatic(f"{module}:{attribute}.__init__")  # inherited or built some other way
    arguments = init.args
    if arguments.vararg or arguments.kwarg or arguments.posonlyargs:
        raise _NotStatic(f"{module}:{attribute}.__init__ takes *args, **kwargs or positional-only ones")
    positional = arguments.args[1:]  # without self
    if len(arguments.defaults) != len(positional) or None in arguments.kw_defaults:
        raise _NotStatic(f"{module}:{attribute}.__init__ has a parameter without a default")
    pairs = [
        *zip(positional, arguments.defaults, strict=True),
        *zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True),
    ]
    return [
        Parameter(
            argument.arg,
            _constant(default, module),
            ast.unparse(argument.annotation) if argument.annotation else "",
        )
        for argument, default in pairs
    ]


def _class_node(module: str, name: str, depth: int = 0) -> tuple[str, ast.ClassDef] | None:
    """The class ``name`` as seen from ``module``: defined there, or imported from another project
    module; None for a class outside the project (e.g. scikit-learn's ``BaseEstimator``)."""
    if depth > 5:
        return None
    try:
        tree = _module_tree(module)
    except _NotStatic:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("rdx"):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _class_node(node.module, alias.name, depth + 1)
    return None


def _is_dataclass(node: ast.ClassDef) -> bool:
    def name_of(decorator: ast.expr) -> str:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")

    return any(name_of(decorator) == "dataclass" for decorator in node.decorator_list)


def _linearisation(module: str, node: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
    """The project classes of ``node``'s method resolution order (C3), most derived first."""
    bases = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            found = _class_node(module, base.id)
            if found is not None:
                bases.append(found)
    sequences = [_linearisation(*base) for base in bases] + [bases]
    order = [(module, node)]
    while any(sequences):
        for sequence in sequences:
            if not sequence:
                continue
            head = sequence[0]
            if not any(head in rest[1:] for rest in sequences):
                break
        else:
            raise _NotStatic(f"{module}:{node.name} has no consistent method resolution order")
        order.append(head)
        sequences = [rest[1:] if rest and rest[0] == head else rest for rest in sequences]
    return order


def _dataclass_parameters(module: str, attribute: str) -> list[Parameter]:
    """The ``__init__`` parameters a dataclass generates: the annotated fields of its dataclass bases,
    base-most first, a redefined field keeping its first place."""
    fields: dict[str, Parameter] = {}
    for class_module, node in reversed(_linearisation(*_class_node(module, attribute))):
        if not _is_dataclass(node):
            continue
        for statement in node.body:
            if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
                continue
            annotation = ast.unparse(statement.annotation)
            if "ClassVar" in annotation:
                continue
            if statement.value is None:
                raise _NotStatic(f"{class_module}:{node.name}.{statement.target.id} has no default")
            if isinstance(statement.value, ast.Call):  # field(...): only a plain default= is read
                raise _NotStatic(f"{class_module}:{node.name}.{statement.target.id} = field(...)")
            name = statement.target.id
            fields[name] = Parameter(name, _constant(statement.value, class_module), annotation)
    return list(fields.values())


def _constant(node: ast.expr, module: str, depth: int = 0) -> Any:
    """The value of ``node`` in ``module``: a literal, a module-level constant or an imported one."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if depth > 3:
        raise _NotStatic(ast.unparse(node))
    if isinstance(node, ast.Name):  # CONSTANT, assigned here or imported from another module
        return _module_constant(module, node.id, depth)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):  # other_module.CONSTANT
        imported = _imported_modules(module).get(node.value.id)
        if imported is not None:
            return _module_constant(imported, node.attr, depth)
    raise _NotStatic(ast.unparse(node))


def _module_constant(module: str, name: str, depth: int) -> Any:
    for node in _module_tree(module).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return _constant(node.value, module, depth + 1)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            if node.value is not None:
                return _constant(node.value, module, depth + 1)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _module_constant(node.module, alias.name, depth + 1)
    raise _NotStatic(f"{module}.{name}")


def _imported_modules(module: str) -> dict[str, str]:
    """Local name → module, for the modules ``module`` imports at its top level."""
    names = {}
    for node in _module_tree(module).body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:  # `from package import module` (a name that is not a module fails later)
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


@cache
def _module_tree(module: str) -> ast.Module:
    return ast.parse(_module_file(module).read_text(encoding="utf-8"))


def _module_file(module: str) -> Path:
    """The source file of ``module``, found without importing it or its packages (beyond the top one)."""
    top, *parts = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise _NotStatic(module)
    if not parts:
        if spec.origin is None or not spec.origin.endswith(".py"):
            raise _NotStatic(module)
        return Path(spec.origin)
    folders = [Path(location) for location in spec.submodule_search_locations or []]
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        candidates = [folder / part / "__init__.py" for folder in folders]
        if last:
            candidates += [folder / f"{part}.py" for folder in folders]
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is None:
            raise _NotStatic(module)
        if last:
            return found
        folders = [found.parent]
    raise _NotStatic(module)
