"""Reading a YAML config safely: a bounded size, UTF-8 text, and PyYAML's SafeLoader refusing what no config needs
(duplicate keys, deep nesting, recursive or exploding aliases), each problem as one line naming the file."""

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from bnbench.errors import BnbenchError

MAX_CONFIG_BYTES = 256 * 1024  # a config is a few hundred bytes; PyYAML parses 30 to 100 KB a second
MAX_YAML_DEPTH = 20  # a config nests 5 levels at most
MAX_ALIAS_NODES = 10_000  # YAML nodes that aliases may repeat, in all (a "billion laughs" repeats 10^9)


def read_yaml(path: Path) -> dict:
    text = _read_text(path)
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as e:
        kind = "" if isinstance(e, YAMLLimit) else "malformed YAML: "
        raise BnbenchError(f"{path}: {kind}{yaml_problem(e)}") from None
    if not isinstance(raw, dict):
        raise BnbenchError(f"{path}: expected a mapping of config fields at the top level, got {type(raw).__name__}")
    return raw


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; a larger file than any config is refused before PyYAML spends minutes on it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise BnbenchError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise BnbenchError(
            f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB, more than any config needs; "
            f"pass the YAML config file (a few hundred bytes), not data"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise BnbenchError(
            f"{path}: line {line}: byte 0x{data[e.start]:02x} is not UTF-8 text (a binary file, or "
            f"another encoding such as Latin-1?); save the config as UTF-8"
        ) from None


class YAMLLimit(yaml.MarkedYAMLError):
    """Valid YAML that no config needs and that would cost time or memory: refused while it is composed."""

    def __init__(self, problem: str, mark):
        super().__init__(problem=problem, problem_mark=mark)


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing what a config never needs: duplicate keys (YAML forbids them; PyYAML keeps the
    last), nesting deeper than MAX_YAML_DEPTH, recursive aliases, and aliases that repeat more than MAX_ALIAS_NODES
    nodes in all. A "billion laughs" document is 1 KB of anchors and aliases; PyYAML builds it cheaply as shared
    objects, but validating it visits every repeat (6 GB). So each node's expanded size and depth are measured
    as it is composed, and every alias is charged its target's expanded size."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth, self._repeated = 0, 0
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._charge_alias(node, mark)
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise YAMLLimit(f"YAML nested deeper than {MAX_YAML_DEPTH} levels; a config needs 5", mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        children = [self._measured[id(c)] for c in _children(node)]
        self._measured[id(node)] = (1 + sum(n for n, _ in children), 1 + max((d for _, d in children), default=0))
        return node

    def _charge_alias(self, node, mark) -> None:
        if id(node) not in self._measured:
            raise YAMLLimit("YAML alias inside the node it refers to (a recursive alias); write the value out", mark)
        nodes, depth = self._measured[id(node)]
        self._repeated += nodes
        if self._repeated > MAX_ALIAS_NODES:
            raise YAMLLimit(
                f"YAML aliases repeat more than {MAX_ALIAS_NODES:,} nodes in all; write the values "
                f"out, or alias fewer or smaller nodes",
                mark,
            )
        if self._depth + depth > MAX_YAML_DEPTH:
            raise YAMLLimit(f"YAML aliases nest deeper than {MAX_YAML_DEPTH} levels; write the values out", mark)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}  # key -> its first key node
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden by the keys beside it
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and seen.setdefault(key, key_node) is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key].start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def load_yaml(text: str) -> Any:
    """yaml.safe_load within bnbench's limits (see BoundedLoader)."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error as one line: 'line 3, column 7: <problem>'."""
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + " ".join(str(getattr(error, "problem", None) or error).split())
