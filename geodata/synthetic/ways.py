"""The road builder shared by stage 3 and after: nodes, segments and tags, planarisation, and OSM ways.

Streets and roads are drawn into one :class:`Roads` as polylines (*groups*) of directed segments. Farm driveways
later split rural segments, :func:`planarise` inserts a node wherever two segments cross, and
:func:`assemble_ways` finally chains the segments into OSM ways.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import shapely

#: Road classes from the most to the least important; a later class never overwrites an earlier one.
ROAD_RANK: Final = {"primary": 0, "secondary": 1, "tertiary": 2, "unclassified": 3, "residential": 4}


class _Column:
    """A growable numpy array (amortised O(1) appends)."""

    def __init__(self, dtype: type) -> None:
        self.data: np.ndarray = np.zeros(1024, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray | Sequence[float]) -> None:
        """Append ``values``, doubling the capacity when it runs out."""
        values = np.asarray(values, dtype=self.data.dtype)
        need = self.n + values.size
        if need > self.data.size:
            grown = np.zeros(max(need, 2 * self.data.size), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : need] = values
        self.n = need

    def view(self) -> np.ndarray:
        """Return the filled part (a view, not a copy)."""
        return self.data[: self.n]


class Roads:
    """Road nodes and directed segments under construction (a local builder; never shared between calls).

    Each segment belongs to a *group* (one drawn polyline) at position ``seq``; ways are assembled at the end
    from runs of consecutive segments of one group with identical tags. The array properties are views: writing
    into them edits the builder.
    """

    def __init__(self) -> None:
        self._x, self._y = _Column(float), _Column(float)
        self._u, self._v, self._group, self._tag = (
            _Column(np.int64),
            _Column(np.int64),
            _Column(np.int64),
            _Column(np.int64),
        )
        self._seq = _Column(float)
        self.tags: list[dict[str, str]] = []
        self._tag_ids: dict[tuple[tuple[str, str], ...], int] = {}
        self.n_groups = 0

    @property
    def x(self) -> np.ndarray:
        """Node eastings (m)."""
        return self._x.view()

    @property
    def y(self) -> np.ndarray:
        """Node northings (m)."""
        return self._y.view()

    @property
    def u(self) -> np.ndarray:
        """Segment start nodes."""
        return self._u.view()

    @property
    def v(self) -> np.ndarray:
        """Segment end nodes."""
        return self._v.view()

    @property
    def group(self) -> np.ndarray:
        """The polyline each segment belongs to."""
        return self._group.view()

    @property
    def seq(self) -> np.ndarray:
        """Each segment's position along its polyline."""
        return self._seq.view()

    @property
    def tag(self) -> np.ndarray:
        """Each segment's index into :attr:`tags`."""
        return self._tag.view()

    def add_nodes(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Add nodes at (x, y); return their indices."""
        start = self._x.n
        self._x.extend(x)
        self._y.extend(y)
        return np.arange(start, self._x.n, dtype=np.int64)

    def add_edges(self, u: np.ndarray, v: np.ndarray, group: np.ndarray, seq: np.ndarray, tag: np.ndarray) -> None:
        """Add segments ``u -> v`` with their group, position along it and tag index."""
        for col, values in ((self._u, u), (self._v, v), (self._group, group), (self._seq, seq), (self._tag, tag)):
            col.extend(values)

    def tag_id(self, tags: Mapping[str, str]) -> int:
        """Return the index of a tag set in :attr:`tags`, adding it if new (equal sets share one index)."""
        key = tuple(sorted(tags.items()))
        found = self._tag_ids.get(key)
        if found is None:
            found = self._tag_ids[key] = len(self.tags)
            self.tags.append(dict(key))
        return found

    def add_chain(self, nodes: Sequence[int] | np.ndarray, tags: Mapping[str, str]) -> tuple[int, list[int]]:
        """Add a polyline through ``nodes``; return its group and its segment indices."""
        group, tag = self.n_groups, self.tag_id(tags)
        self.n_groups += 1
        ids = np.asarray(nodes, dtype=np.int64)
        m = ids.size - 1
        first = self._u.n
        self.add_edges(ids[:-1], ids[1:], np.full(m, group), np.arange(m, dtype=float), np.full(m, tag))
        return group, list(range(first, first + m))

    def retag(self, edge: int, **changes: str) -> None:
        """Change some of a segment's tags, keeping the others."""
        self.tag[edge] = self.tag_id({**self.tags[int(self.tag[edge])], **changes})

    def highway(self, edge: int) -> str:
        """Return a segment's ``highway`` class."""
        return self.tags[int(self.tag[edge])]["highway"]

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the node eastings and northings."""
        return self.x, self.y


def planarise(roads: Roads, forced: Sequence[tuple[int, float, int]] = ()) -> None:
    """Insert a shared node wherever two segments cross, and split segments at the ``forced`` (edge, t, node)."""
    x, y = roads.xy()
    u, v = roads.u, roads.v
    p = np.column_stack([x[u], y[u]])
    q = np.column_stack([x[v], y[v]])
    lines = shapely.linestrings(np.stack([p, q], axis=1))
    tree = shapely.STRtree(lines)
    left, right = tree.query(lines, predicate="crosses")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = (u[left] == u[right]) | (u[left] == v[right]) | (v[left] == u[right]) | (v[left] == v[right])
    left, right = left[~shared], right[~shared]
    r, s = q[left] - p[left], q[right] - p[right]
    qp = p[right] - p[left]
    denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    ok = np.abs(denom) > 1e-12
    left, right, r, s, qp, denom = left[ok], right[ok], r[ok], s[ok], qp[ok], denom[ok]
    t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / denom
    w = (qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]) / denom
    # An end lying on the other segment (a driveway meeting its road) is a junction already, not a crossing.
    proper = (t > 1e-6) & (t < 1 - 1e-6) & (w > 1e-6) & (w < 1 - 1e-6)
    left, right, r, t, w = left[proper], right[proper], r[proper], t[proper], w[proper]
    pts = p[left] + t[:, None] * r
    new = roads.add_nodes(pts[:, 0], pts[:, 1])
    splits: list[tuple[int, float, int]] = list(forced)
    for k in range(len(new)):
        splits.append((int(left[k]), float(t[k]), int(new[k])))
        splits.append((int(right[k]), float(w[k]), int(new[k])))
    splits.sort()
    new_u: list[int] = []
    new_v: list[int] = []
    new_e: list[int] = []
    new_f: list[float] = []
    k = 0
    rv = roads.v
    while k < len(splits):
        e = splits[k][0]
        first = k
        while k < len(splits) and splits[k][0] == e:
            k += 1
        chain = [node for _, _, node in splits[first:k]] + [int(rv[e])]
        rv[e] = chain[0]
        for m in range(k - first):
            new_u.append(chain[m])
            new_v.append(chain[m + 1])
            new_e.append(e)
            new_f.append(splits[first + m][1])
    e_arr = np.asarray(new_e, dtype=np.int64)
    roads.add_edges(
        np.asarray(new_u, dtype=np.int64),
        np.asarray(new_v, dtype=np.int64),
        roads.group[e_arr],
        roads.seq[e_arr] + 0.999 * np.asarray(new_f),
        roads.tag[e_arr],
    )


def assemble_ways(roads: Roads) -> list[tuple[list[int], int]]:
    """Chain segments into ways: runs of one group, in order, with one tag set; at most 1,900 nodes each."""
    order = np.lexsort((roads.seq, roads.group))
    ways: list[tuple[list[int], int]] = []
    prev_group, prev_tag, chain = -1, -1, [0]
    columns = (roads.group[order], roads.tag[order], roads.u[order], roads.v[order])
    for g, tag, u, v in zip(*(c.tolist() for c in columns), strict=True):
        if g == prev_group and tag == prev_tag and chain[-1] == u and len(chain) < 1_900:
            chain.append(v)
            continue
        if prev_group >= 0:
            ways.append((chain, prev_tag))
        chain, prev_group, prev_tag = [u, v], g, tag
    if prev_group >= 0:
        ways.append((chain, prev_tag))
    return ways
