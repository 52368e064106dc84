"""Reading YAML we did not write (metadata such as MACS.yaml, params files that travel with experiments)
with PyYAML's safe loader and a bound on alias expansion.

Aliases are legal YAML and a dumper may emit a few for repeated values, but nested aliases ("billion
laughs") make a 400-byte file describe 10^9 nodes: every reader that walks the result then takes minutes
and gigabytes. The document's size with every alias expanded is computed on the composed node graph (in
time linear in the file) and a document whose expansion is more than MAX_EXPANSION times its distinct nodes
(plus a small allowance) is refused before anything is built from it.
"""

from __future__ import annotations

import yaml

MAX_EXPANSION = 10  # expanded nodes per distinct node
ALLOWANCE = 100_000  # expanded nodes always allowed


class YamlTooLarge(ValueError):
    """A YAML document whose aliases expand it far beyond its own size."""


def safe_load(text: str, what: str):
    """The Python value of one YAML document (safe types only); raises `YamlTooLarge` naming `what` when its
    aliases expand it more than MAX_EXPANSION-fold, and yaml.YAMLError for invalid YAML."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return None
    distinct, expanded = _sizes(node)
    if expanded > MAX_EXPANSION * distinct + ALLOWANCE:
        raise YamlTooLarge(f"{what}: its aliases (*name) expand {distinct:,} nodes to {expanded:,}: refusing it "
                           "(nested aliases, a 'billion laughs' file?); write the values out instead")  # fmt: skip
    return yaml.SafeLoader("").construct_document(node)


def _sizes(root: yaml.Node) -> tuple[int, int]:
    """(distinct nodes, nodes with every alias expanded), by a post-order walk memoised per node."""
    expanded: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in expanded:
            continue
        children = _children(node)
        if children_done or not children:
            expanded[id(node)] = 1 + sum(expanded[id(child)] for child in children)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in expanded)
    return len(expanded), expanded[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
