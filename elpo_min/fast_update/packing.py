"""The token tree of a micro-batch: one position per distinct root-to-token path, laid out in rows.

The update's per-leaf rows repeat every shared token: the prompt once per rollout, BEL's
prefix(m) once per continuation from it. Merged into a trie, with token ids compared along the
path (so two independent samples with the same opening merge too), each distinct path is one
position. A packed row holds whole subtrees of that trie in depth-first order. A token attends
to its ancestors and itself only, and its position id is its depth, so it sees exactly the
context, at exactly the rotary positions, that it has in its own per-leaf row: the forward is
the per-leaf forward with the repeats left out.

Depth-first order turns "is ``a`` an ancestor of ``q``?" into an interval test: ``a <= q <
end[a]``, where ``end[a]`` closes ``a``'s subtree. The attention mask is built from one [P, L]
tensor of subtree ends (:func:`ancestor_mask`), and a FlexAttention block mask from the same
rule, so no code here needs a dense [L, L] matrix but the CPU path, which asks for one.

Rows hold whole subtrees of the trie wherever they fit (:func:`group_leaves`). A subtree larger
than the row budget is opened and its children placed in turn, so a split repeats only the path
above the node where it happens (the prompt, or BEL's prefix(m)); a single leaf longer than the
budget gets a row of its own, as long as the leaf.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackedRows:
    """A micro-batch's rows merged into token trees and laid out in ``P`` packed rows.

    ``input_ids``, ``position_ids`` (each position's depth) and ``subtree_end`` (the exclusive
    end of its subtree) are [P, L]; beyond a row's tokens, ids and positions are 0 and each
    position is its own subtree. ``row`` [B] is the packed row that holds leaf b, and ``index``
    [B, T] the position in it of leaf b's token t (0 beyond the leaf's length).
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    subtree_end: torch.Tensor
    row: torch.Tensor
    index: torch.Tensor
    # tokens in each packed row: the distinct paths it holds
    sizes: list[int]


class Trie:
    """Token ids merged along their paths; node ids in order of insertion."""

    def __init__(self):
        self.token: list[int] = []
        self.depth: list[int] = []
        self.parent: list[int] = []
        # children of node i, token -> node; the roots are children of -1
        self.children: dict[int, dict[int, int]] = {-1: {}}

    def __len__(self) -> int:
        return len(self.token)

    def shared(self, ids: list[int]) -> int:
        """How many leading tokens of ``ids`` are already in the trie."""
        node, n = -1, 0
        for token in ids:
            node = self.children[node].get(token, -2)
            if node == -2:
                break
            n += 1
        return n

    def insert(self, ids: list[int]) -> list[int]:
        """Add the path ``ids``; returns the node of each of its tokens."""
        node, path = -1, []
        for depth, token in enumerate(ids):
            child = self.children[node].get(token)
            if child is None:
                child = len(self.token)
                self.token.append(token)
                self.depth.append(depth)
                self.parent.append(node)
                self.children[child] = {}
                self.children[node][token] = child
            path.append(child)
            node = child
        return path

    def sizes(self) -> list[int]:
        """The number of nodes in each node's subtree, itself included."""
        size = [1] * len(self.token)
        # a node is inserted after its parent: adding sizes in reverse order sums each subtree
        for node in range(len(self.token) - 1, -1, -1):
            if self.parent[node] >= 0:
                size[self.parent[node]] += size[node]
        return size

    def layout(self) -> tuple[list[int], list[int]]:
        """Depth-first order: each node's position, and the exclusive end of its subtree."""
        size = self.sizes()
        position = [0] * len(self.token)
        stack = list(reversed(self.children[-1].values()))
        counter = 0
        while stack:
            node = stack.pop()
            position[node] = counter
            counter += 1
            stack.extend(reversed(self.children[node].values()))
        end = [position[n] + size[n] for n in range(len(self.token))]
        return position, end


def group_leaves(rows: list[list[int]], budget: int) -> tuple[list[Trie], list[int], list]:
    """Which leaves share a packed row: whole subtrees of their trie wherever they fit.

    Subtrees are visited depth-first. One that fits beside what the current row holds joins it;
    one that fits an empty row starts the next row; a larger one is opened, and its children are
    placed in turn. So a split repeats only the path above the node where it happens, the
    prompt for a tree split between its first turns, prefix(m) for one split below a probe.

    Returns:
        each packed row's trie, the packed row of each leaf, and the node in that row's trie of
        each of the leaf's tokens.
    """
    trie = Trie()
    ending = {}
    for b, row in enumerate(rows):
        ending.setdefault(trie.insert(row)[-1], []).append(b)
    size = trie.sizes()
    tries, leaf_row, leaf_path = [Trie()], [0] * len(rows), [[] for _ in rows]

    def add(leaves: list[int]) -> None:
        for b in leaves:
            leaf_row[b] = len(tries) - 1
            leaf_path[b] = tries[-1].insert(rows[b])

    def new_row() -> None:
        if len(tries[-1]):
            tries.append(Trie())

    def below(node: int) -> list[int]:
        """The leaves in ``node``'s subtree."""
        found, stack = [], [node]
        while stack:
            here = stack.pop()
            found += ending.get(here, [])
            stack.extend(trie.children[here].values())
        return found

    stack = [(node, [trie.token[node]]) for node in reversed(trie.children[-1].values())]
    while stack:
        node, path = stack.pop()
        # the subtree, and the path above it unless the row already holds that path
        above = len(path) - 1
        current = tries[-1]
        beside = size[node] + above - current.shared(path[:-1])
        if len(current) + beside <= budget:
            add(below(node))
        elif size[node] + above <= budget:
            new_row()
            add(below(node))
        else:
            for b in ending.get(node, []):
                if len(tries[-1]) + len(rows[b]) - tries[-1].shared(rows[b]) > budget:
                    new_row()
                add([b])
            children = trie.children[node].values()
            stack.extend((child, path + [trie.token[child]]) for child in reversed(children))
    return tries, leaf_row, leaf_path


def pack_rows(input_ids: torch.Tensor, lengths: list[int], budget: int) -> PackedRows:
    """Merge right-padded rows into token trees, in packed rows of at most ``budget`` tokens.

    Args:
        input_ids: [B, T] token ids.
        lengths: each row's number of tokens (its padding follows them).
        budget: the longest packed row, in tokens (a longer leaf gets a row of its own).
    """
    rows = [ids[:n] for ids, n in zip(input_ids.tolist(), lengths)]
    tries, leaf_row, leaf_path = group_leaves(rows, budget)
    width = max(len(trie) for trie in tries)
    shape = (len(tries), width)
    packed_ids = torch.zeros(shape, dtype=torch.long)  # [P, L]
    depth = torch.zeros(shape, dtype=torch.long)  # [P, L]
    # beyond a row's tokens, every position is its own subtree
    end = torch.arange(1, width + 1).repeat(len(tries), 1)  # [P, L]
    positions = []
    for p, trie in enumerate(tries):
        position, subtree_end = trie.layout()
        at = torch.tensor(position, dtype=torch.long)  # [n]
        packed_ids[p, at] = torch.tensor(trie.token)
        depth[p, at] = torch.tensor(trie.depth)
        end[p, at] = torch.tensor(subtree_end)
        positions.append(at)
    index = torch.zeros(input_ids.shape, dtype=torch.long)  # [B, T]
    for b, (p, path) in enumerate(zip(leaf_row, leaf_path)):
        # where each token of leaf b stands in its packed row
        index[b, : lengths[b]] = positions[p][path]
    device = input_ids.device
    return PackedRows(
        packed_ids.to(device),
        depth.to(device),
        end.to(device),
        torch.tensor(leaf_row, dtype=torch.long, device=device),
        index.to(device),
        [len(trie) for trie in tries],
    )


def ancestor_mask(subtree_end: torch.Tensor) -> torch.Tensor:
    """[P, 1, L, L] boolean: query q may attend to key k iff k is q or one of its ancestors,
    that is k <= q < subtree_end[k]."""
    width = subtree_end.shape[1]
    q = torch.arange(width, device=subtree_end.device)[:, None]  # [L, 1]
    k = torch.arange(width, device=subtree_end.device)[None, :]  # [1, L]
    return ((k <= q) & (q < subtree_end[:, None, :]))[:, None]  # [P, 1, L, L]
