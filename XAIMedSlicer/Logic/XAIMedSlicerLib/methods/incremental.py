"""Exact incremental inference for occlusion: recompute only what an occluded box can change.

The network is traced with ``torch.fx`` and split into an early part (the *prefix*) whose outputs
depend only on a neighbourhood of each input voxel, and the rest. For an occluded box the prefix is
rerun on a crop around the box, and only the part of each prefix output that the box can reach is
pasted into the unoccluded activations; the rest of the network then runs as usual. The result is the
same as a full forward pass (up to float rounding); Krypton (Nakandala et al., SIGMOD 2019) showed the
idea for 2D CNNs.

Which output voxels a box reaches is measured, not assumed: the prefix is run on copies of the input
with a NaN plane at a few positions along each axis, and NaN spreads exactly along the dependencies
(zero weights included, so the estimate can only be too large). Global operations (instance norm,
pooling to a vector, attention) spread NaN everywhere and end the prefix. A box's reach is then
translated by the node's stride. Crops start at multiples of the largest stride so that strided layers
sample the same positions as in the full pass. Before use, the split is checked against full forward
passes on a corner and a central box; on any mismatch the caller falls back to full passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
from torch import nn


@dataclass
class Reach:
    """Per-axis reach of input positions into one node: ``lo[p]..hi[p]`` (inclusive) for each p."""

    lo: list[np.ndarray]
    hi: list[np.ndarray]
    size: tuple[int, ...]  # the node's spatial size
    stride: tuple[int, ...]

    def dirty(self, box: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        """Node index range (inclusive) that an input box ``[(a, b) ...]`` (b exclusive) can change."""
        return tuple((int(self.lo[d][a]), int(self.hi[d][b - 1])) for d, (a, b) in enumerate(box))

    def needs(self, rng: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        """Input range ``[(a, b) ...]`` (b exclusive) that node indices ``rng`` depend on."""
        out = []
        for d, (o1, o2) in enumerate(rng):
            a = int(np.argmax(self.hi[d] >= o1))
            b = int(len(self.lo[d]) - np.argmax(self.lo[d][::-1] <= o2))
            out.append((a, b))
        return tuple(out)


def _spatial(t, ndim: int) -> bool:
    return isinstance(t, torch.Tensor) and t.ndim == ndim and t.is_floating_point()


class _Recorder(fx.Interpreter):
    """Runs a graph, keeping every node's output and its estimated cost.

    The cost is multiply-adds for convolutions and linear layers and the output size for everything
    else (memory-bound); measured times are too noisy on a shared machine to choose a split.
    """

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[str, object] = {}
        self.cost: dict[str, float] = {}

    def run_node(self, n: fx.Node):
        value = super().run_node(n)
        self.values[n.name] = value
        size = value.numel() if isinstance(value, torch.Tensor) else 0
        module = self.module.get_submodule(n.target) if n.op == "call_module" else None
        weight = getattr(module, "weight", None)
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
            self.cost[n.name] = float(size) * weight[0].numel()
        else:
            self.cost[n.name] = float(size)
        return value


class IncrementalModel:
    """Scores of inputs that differ from ``x`` only inside boxes, computed by rerunning crops.

    Build with :meth:`build` (returns ``None`` where the network cannot be traced or split usefully).
    """

    def __init__(
        self, prefix: fx.GraphModule, suffix: fx.GraphModule, frontier: list[str], reach: dict, base, align
    ):
        self.prefix, self.suffix, self.frontier = prefix, suffix, frontier
        self.reach, self.base, self.align = reach, base, align
        self.plan: dict = {}
        self.tail = None  # a TailRunner of the suffix where the target reads only a region

    @classmethod
    def build(cls, model: nn.Module, x: torch.Tensor, window: tuple[int, ...], max_stride: int = 4):
        """Trace ``model``, measure reaches on ``x`` and choose the split that saves the most time."""
        gm = trace(model)
        if gm is None:
            return None
        nd = x.ndim
        spatial = tuple(x.shape[2:])
        with torch.inference_mode():
            rec = _Recorder(gm)
            rec.run(x)
        nodes = [n for n in gm.graph.nodes if n.op != "output"]
        cand: dict[str, tuple[int, ...]] = {}
        for n in nodes:
            value = rec.values.get(n.name)
            if n.op == "get_attr" or not _spatial(value, nd):
                continue
            if any(a.name not in cand for a in n.all_input_nodes if a.op != "get_attr"):
                continue
            shape = tuple(value.shape[2:])
            stride = tuple(max(1, round(s / o)) for s, o in zip(spatial, shape, strict=True))
            if all(
                s * o >= n_in and s <= max_stride and s & (s - 1) == 0
                for s, o, n_in in zip(stride, shape, spatial, strict=True)
            ):
                cand[n.name] = stride
        if len(cand) < 2:
            return None
        reach = _probe(gm, x, cand, max_stride)
        if not reach:
            return None
        best = _choose_split(gm, rec.cost, reach, spatial, window, max_stride)
        if best is None:
            return None
        prefix_names, frontier = best
        prefix, suffix = _split(gm, prefix_names, frontier)
        with torch.inference_mode():
            base = [t.clone() for t in _as_tuple(prefix(x))]
        return cls(prefix, suffix, frontier, {f: reach[f] for f in frontier}, base, max_stride)

    def rebase(self, x: torch.Tensor) -> None:
        """Compute the unoccluded prefix outputs for a new input of the same shape."""
        with torch.inference_mode():
            self.base = [t.clone() for t in _as_tuple(self.prefix(x))]

    def crop_for(self, box: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        """Input crop ``[(a, b) ...]`` needed to recompute everything ``box`` changes (aligned start)."""
        lo = [box[d][0] for d in range(len(box))]
        hi = [box[d][1] for d in range(len(box))]
        for f in self.frontier:
            need = self.reach[f].needs(self.reach[f].dirty(box))
            for d, (a, b) in enumerate(need):
                lo[d], hi[d] = min(lo[d], a), max(hi[d], b)
        return tuple(((a // self.align) * self.align, b) for a, b in zip(lo, hi, strict=True))

    def crops_for(self, boxes: list, spatial: tuple[int, ...]) -> list[tuple[tuple[int, int], ...]]:
        """One crop per box, all of the same size where possible (one batch, one kernel shape).

        Per axis the length is the longest needed crop, lengthened so that a crop ending at the border
        also starts at a multiple of the alignment.
        """
        needed = [self.crop_for(b) for b in boxes]
        lengths = []
        for d, n in enumerate(spatial):
            longest = max(b - a for c in needed for a, b in [c[d]])
            length = n - ((n - longest) // self.align) * self.align if longest < n else n
            lengths.append(length)
        out = []
        for c in needed:
            crop = []
            for (a, _b), length, n in zip(c, lengths, spatial, strict=True):
                a = min(a, n - length)
                crop.append((a, a + length))
            out.append(tuple(crop))
        return out

    def outputs(self, crops: torch.Tensor, regions: list, boxes: list) -> torch.Tensor:
        """Network outputs for a batch of occluded crops (same size; their regions; one box each)."""
        parts = _as_tuple(self.prefix(crops))
        full = []
        for f, part, base in zip(self.frontier, parts, self.base, strict=True):
            stride = self.reach[f].stride
            batch = base.expand(len(boxes), *base.shape[1:]).clone()
            for b, box in enumerate(boxes):
                rng = self.reach[f].dirty(box)
                dst = tuple(slice(o1, o2 + 1) for o1, o2 in rng)
                src = tuple(
                    slice(o1 - c[0] // s, o2 + 1 - c[0] // s)
                    for (o1, o2), c, s in zip(rng, regions[b], stride, strict=True)
                )
                batch[(b, slice(None), *dst)] = part[(b, slice(None), *src)]
            full.append(batch)
        return (self.tail or self.suffix)(*full)


def trace(model: nn.Module) -> fx.GraphModule | None:
    """``model`` traced by ``torch.fx``, or ``None`` (TorchScript, or any tracing failure)."""
    if isinstance(model, torch.jit.ScriptModule):
        return None
    try:
        return fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure means: no incremental inference
        return None


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _probe(gm: fx.GraphModule, x: torch.Tensor, cand: dict, period: int) -> dict[str, Reach]:
    """Reach tables of candidate nodes from a NaN voxel at ``period`` diagonal offsets near the centre.

    Convolution and pooling kernels are boxes, so the NaN region of one voxel is a box whose extent
    along each axis depends only on the voxel's position along that axis.
    """
    spatial = tuple(x.shape[2:])
    nd = len(spatial)
    centre = [max(0, (s // 2 // period) * period) for s in spatial]
    probes = []
    for r in range(period):
        probe = x[0].clone()
        probe[(slice(None), *[min(c + r, s - 1) for c, s in zip(centre, spatial, strict=True)])] = float(
            "nan"
        )
        probes.append(probe)
    meta = [(d, r) for r in range(period) for d in range(nd)]
    sub, _ = _split(gm, list(cand), list(cand), suffix=False)
    with torch.inference_mode():
        outs = dict(zip(cand, _as_tuple(sub(torch.stack(probes))), strict=True))
    reach: dict[str, Reach] = {}
    for name, out in outs.items():
        stride = cand[name]
        size = tuple(out.shape[2:])
        lo_tab = np.zeros((nd, period), dtype=np.int64)
        hi_tab = np.zeros((nd, period), dtype=np.int64)
        ok = True
        for d, r in meta:
            nan = torch.isnan(out[r]).any(0)
            other = tuple(k for k in range(nd) if k != d)
            line = nan.any(dim=other) if other else nan
            idx = torch.nonzero(line).flatten()
            touches = size[d] > 1 and (int(idx[0]) == 0 or int(idx[-1]) == size[d] - 1) if len(idx) else True
            if touches:
                ok = False  # never reached, global, or reaching the border: not a prefix node
                break
            lo_tab[d, r], hi_tab[d, r] = int(idx[0]), int(idx[-1])
        if not ok:
            continue
        lo, hi = [], []
        for d in range(nd):
            p = np.arange(spatial[d])
            k, r = np.divmod(p - centre[d], period)
            step = period // stride[d]
            lo.append(np.clip(lo_tab[d, r] + k * step, 0, size[d] - 1))
            hi.append(np.clip(hi_tab[d, r] + k * step, 0, size[d] - 1))
        reach[name] = Reach(lo, hi, size, stride)
    return reach


def _choose_split(gm, seconds: dict, reach: dict, spatial, window, period):
    """``(prefix node names, frontier)`` with the lowest estimated cost per occluded box, or None."""
    nodes = [n for n in gm.graph.nodes if n.op not in ("output",)]
    total = sum(seconds.values())
    box = tuple(((s - w) // 2, (s - w) // 2 + w) for s, w in zip(spatial, window, strict=True))
    volume = float(np.prod(spatial))
    best, best_cost = None, total * 0.95
    order = [n for n in nodes if n.name in reach]
    for cut in range(1, len(order) + 1):
        names = {n.name for n in order[:cut]}
        prefix = [n.name for n in nodes if n.name in names or n.op == "placeholder"]
        if any(
            a.name not in names and a.op not in ("placeholder", "get_attr")
            for n in order[:cut]
            for a in n.all_input_nodes
        ):
            continue
        users = {u for n in nodes if n.name in prefix for u in n.users if u.name not in prefix}
        frontier = [n.name for n in nodes if n.name in prefix and any(u in users for u in n.users)]
        if not frontier or any(f not in reach for f in frontier):
            continue
        model = IncrementalModel(None, None, frontier, reach, None, period)
        crop = model.crop_for(box)
        crop_frac = float(np.prod([b - a for a, b in crop])) / volume
        cost = sum(v for k, v in seconds.items() if k in names) * crop_frac
        cost += sum(v for k, v in seconds.items() if k not in names)
        cost += total * 0.02 * len(frontier)  # pasting and copying activations
        if cost < best_cost:
            best, best_cost = (prefix, frontier), cost
    return best


def _split(gm: fx.GraphModule, prefix: list[str], frontier: list[str], suffix: bool = True):
    """GraphModules for the prefix (input -> frontier tuple) and the suffix (frontier -> output)."""
    names = set(prefix)
    pre = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in gm.graph.nodes:
        if n.op == "placeholder" or (n.name in names and n.op != "output") or n.op == "get_attr":
            env[n] = pre.node_copy(n, lambda a: env[a])
    by_name = {n.name: n for n in gm.graph.nodes}
    pre.output(tuple(env[by_name[f]] for f in frontier))
    prefix_gm = fx.GraphModule(gm, pre)
    if not suffix:
        return prefix_gm, None
    post = fx.Graph()
    env2: dict[fx.Node, fx.Node] = {}
    for f in frontier:
        env2[by_name[f]] = post.placeholder(f"frontier_{f}")
    for n in gm.graph.nodes:
        if n in env2 or n.name in names or n.op == "placeholder":
            continue
        env2[n] = post.node_copy(n, lambda a: env2[a])
    return prefix_gm, fx.GraphModule(gm, post)
