"""Clusters: connected components of the pairs above a match-probability threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray


def connected_components(n: int, left: NDArray[np.int64], right: NDArray[np.int64]) -> NDArray[np.int64]:
    """The component of each of n nodes, as the smallest node in it, for undirected edges left-right.

    Min-label propagation over all edges at once, with pointer jumping, until nothing changes.
    """
    labels = np.arange(n, dtype=np.int64)
    if len(left) == 0:
        return labels
    while True:
        lowest = np.minimum(labels[left], labels[right])
        updated = labels.copy()
        np.minimum.at(updated, left, lowest)
        np.minimum.at(updated, right, lowest)
        # Jump: each node takes its label's label until the labels are roots.
        while True:
            jumped = updated[updated]
            if np.array_equal(jumped, updated):
                break
            updated = jumped
        if np.array_equal(updated, labels):
            return labels
        labels = updated


def cluster_ids(ids: Sequence[str] | pa.Array, left: NDArray[np.int64], right: NDArray[np.int64]) -> pa.Table:
    """A table (id, cluster_id) where a cluster's id is the smallest record id in it."""
    id_array = pa.array(ids, pa.string()) if not isinstance(ids, pa.Array) else ids
    n = len(id_array)
    # Rank the ids so that the smallest node of a component is its smallest id.
    order = np.asarray(pc.sort_indices(id_array), dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    roots = connected_components(n, rank[left], rank[right])
    cluster = id_array.take(pa.array(order[roots[rank]]))
    return pa.table({"id": id_array, "cluster_id": cluster})
