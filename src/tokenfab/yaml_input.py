"""User YAML read safely: bounded size, bounded aliases, and numbers as YAML 1.2 reads them.

PyYAML's safe loader builds no objects from tags, but a 1 KB file of nested aliases ("billion laughs") expands to
billions of nodes when anything walks it, and YAML 1.1 reads `5.0e12` (no sign in the exponent) as a string.
Every YAML a user hands tokenfab (design problems, chip designs, fleet plans, workloads) comes through here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_BYTES = 2_000_000       # far above any real problem, plan or design file
MAX_ALIASES = 200           # anchors are for sharing a block or two, not for building trees
MAX_VALUES = 1_000_000      # values once every alias is expanded (what anything walking the file would see)


class UserYamlError(yaml.YAMLError):
    """A file refused before it is built (too large, too many aliases)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = None


class _Loader(yaml.SafeLoader):
    """The safe loader, counting aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 - PyYAML's own signature
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise UserYamlError(f"more than {MAX_ALIASES} aliases")
        return super().compose_node(parent, index)


# YAML 1.2 floats: 5e12, 5.0e12, .5, 1_000.0 are numbers (1.1 wanted a dot and a signed exponent)
_FLOAT_12 = re.compile(r"^[-+]?(?:\d[\d_]*\.?[\d_]*(?:[eE][-+]?\d+)?|\.\d[\d_]*(?:[eE][-+]?\d+)?|\.(?:inf|Inf|INF)"
                       r"|\.(?:nan|NaN|NAN))$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _int_first(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A scalar the 1.2 float pattern took that is a plain integer stays an integer."""
    text = loader.construct_scalar(node)
    if re.fullmatch(r"[-+]?\d[\d_]*", str(text)):
        return int(str(text).replace("_", ""))
    return loader.construct_yaml_float(node)


_Loader.add_constructor("tag:yaml.org,2002:float", _int_first)


def load_user_yaml(text: str) -> Any:
    """Parse `text`; `yaml.YAMLError` (a `UserYamlError` for the limits) when it cannot be read."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise UserYamlError(f"larger than {MAX_BYTES // 1_000_000} MB")
    data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader with limits
    if _expanded(data, {}) > MAX_VALUES:
        raise UserYamlError(f"its aliases expand to more than {MAX_VALUES:,} values")
    return data


def _expanded(node: Any, seen: dict[int, int]) -> int:
    """Values in `node` with every shared (aliased) part counted each time it appears; shared parts are sized
    once (memo by identity), so a bomb is measured without being walked."""
    if not isinstance(node, dict | list):
        return 1
    key = id(node)
    if key not in seen:
        seen[key] = 0   # a cycle (an alias inside its own anchor) counts as nothing more
        items = list(node.items()) if isinstance(node, dict) else [(None, v) for v in node]
        seen[key] = 1 + sum(_expanded(v, seen) for _k, v in items)
    return seen[key]


def yaml_problem(err: yaml.YAMLError) -> str:
    """' at line N: what' for a one-line message."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None)
    return f"{where}: {problem}" if problem else where


__all__ = ["MAX_ALIASES", "MAX_BYTES", "MAX_VALUES", "UserYamlError", "load_user_yaml", "yaml_problem"]
