"""Reading YAML we did not write (metadata such as MACS.yaml, params files that travel with experiments)
with PyYAML's safe loader and a bound on alias expansion.

Aliases are legal YAML and a dumper may emit a few for repeated values, but nested aliases ("billion
laughs") make a 400-byte file describe 10^9 nodes: every reader that walks the result then takes minutes
and gigabytes. The document's size with every alias expanded is computed on the composed node graph (in
time linear in the file) and a document whose expansion is more than MAX_EXPANSION times its distinct nodes
(plus a small allowance) is refused before anything is built from it. A node that contains itself
(`a: &a [*a]`, legal YAML that PyYAML builds as a recursive list) expands without end and is refused too.
"""

from __future__ import annotations

import yaml

MAX_EXPANSION = 10  # expanded nodes per distinct node
ALLOWANCE = 100_000  # expanded nodes always allowed


class YamlTooLarge(ValueError):
    """A YAML document whose aliases expand it far beyond its own size."""


def safe_load(text: str, what: str):
    """The Python value of one YAML document (safe types only); raises `YamlTooLarge` naming `what` when its
    aliases expand it more than MAX_EXPANSION-fold or without end (a node holding an alias of itself), and
    yaml.YAMLError for invalid YAML."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return None
    distinct, expanded = _sizes(node, what)
    if expanded > MAX_EXPANSION * distinct + ALLOWANCE:
        raise YamlTooLarge(f"{what}: its aliases (*name) expand {distinct:,} nodes to {expanded:,}: refusing it "
                           "(nested aliases, a 'billion laughs' file?); write the values out instead")  # fmt: skip
    return yaml.SafeLoader("").construct_document(node)


def _sizes(root: yaml.Node, what: str) -> tuple[int, int]:
    """(distinct nodes, nodes with every alias expanded), by a post-order walk memoised per node; a node reached
    again while its own children are being counted is a cycle (`YamlTooLarge`)."""
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path from the root: met again below itself = a cycle
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in expanded:
            continue
        children = _children(node)
        if children_done or not children:
            open_nodes.discard(id(node))
            expanded[id(node)] = 1 + sum(expanded[id(child)] for child in children)
            continue
        if id(node) in open_nodes:
            raise _cycle(node, what)
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise _cycle(child, what)
            if id(child) not in expanded:
                stack.append((child, False))
    return len(expanded), expanded[id(root)]


def _cycle(node: yaml.Node, what: str) -> YamlTooLarge:
    line = node.start_mark.line + 1 if node.start_mark else "?"
    return YamlTooLarge(f"{what}: the node at line {line} contains an alias (*name) of itself, a structure that "
                        "expands without end: refusing it; write the values out instead")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
