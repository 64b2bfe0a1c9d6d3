"""Per-layer exact incremental inference for occlusion: each layer runs only where a box changes it.

The network is traced with ``torch.fx`` and run once on the unoccluded input, keeping every layer's
output (the *base*). For an occluded box the changed region is tracked layer by layer: it grows by a
convolution's or pooling's reach (and maps through its stride), stays the same through point-wise
layers (batch norm in eval mode, activations) and is the union of the inputs' regions at a channel
concatenation or an element-wise sum. Each layer is computed only on that region, from its inputs'
base outputs with their changed parts pasted in (zero or ``-inf`` padding only where the region's
halo leaves the grid). Once a region covers most of its grid, or at any other operation (global
pooling, flatten, linear), the layer and everything after it run in full. Boxes run in batches: each
layer's region has the largest size over the batch, placed around each box's own region.

Dense networks (DenseNet's concatenations) are where this pays over a single prefix split: every dense
layer recomputes only its own region, however large the concatenated input has grown elsewhere. The
result equals a full forward pass up to float rounding; the caller checks it on three boxes before use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .boxes import Box, union
from .incremental import _Recorder, trace
from .incremental_tail import (
    _CONV,
    _ELEMENTWISE_FUNCTIONS,
    _ELEMENTWISE_MODULES,
    TailRunner,
    _cat_dim,
    _volume,
)

_CONV_FN = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}
_MAXPOOL = {3: F.max_pool1d, 4: F.max_pool2d, 5: F.max_pool3d}
_AVGPOOL = {3: F.avg_pool1d, 4: F.avg_pool2d, 5: F.avg_pool3d}


@dataclass
class _Rule:
    """How a node maps a changed region: ``kind`` is point, cat, window or other."""

    kind: str
    inputs: tuple[str, ...] = ()  # spatial inputs
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    fill: float = 0.0


@dataclass
class _Part:
    """A batch's changed values of one node: item ``b`` holds the region at ``starts[b]`` of ``size``."""

    starts: list[tuple[int, ...]]
    size: tuple[int, ...]
    t: torch.Tensor


def _triple(v, nd: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * nd


def _rule(n: fx.Node, modules: dict, shapes: dict, nd: int) -> _Rule:
    """The region rule of node ``n`` (``other`` for anything not known to be local and exact)."""
    spatial = tuple(a.name for a in n.all_input_nodes if a.name in shapes)
    if n.name not in shapes or not spatial:
        return _Rule("other", spatial)
    size = shapes[n.name]
    m = modules.get(n.target) if n.op == "call_module" else None
    if isinstance(m, _CONV) and len(n.args) == 1 and not n.kwargs:
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            return _Rule("other", spatial)
        return _Rule("window", spatial, m.kernel_size, m.stride, m.padding, m.dilation, 0.0)
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)) and len(n.args) == 1 and not n.kwargs:
        if m.ceil_mode or m.return_indices:
            return _Rule("other", spatial)
        k = _triple(m.kernel_size, nd)
        s = _triple(m.stride if m.stride is not None else m.kernel_size, nd)
        return _Rule("window", spatial, k, s, _triple(m.padding, nd), _triple(m.dilation, nd), float("-inf"))
    if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)) and len(n.args) == 1 and not n.kwargs:
        pad = _triple(m.padding, nd)
        if m.ceil_mode or getattr(m, "divisor_override", None) or (any(pad) and not m.count_include_pad):
            return _Rule("other", spatial)
        k = _triple(m.kernel_size, nd)
        s = _triple(m.stride if m.stride is not None else m.kernel_size, nd)
        return _Rule("window", spatial, k, s, pad, (1,) * nd, 0.0)
    if any(shapes[a] != size for a in spatial):
        return _Rule("other", spatial)
    if isinstance(m, _ELEMENTWISE_MODULES) and len(spatial) == 1:
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or not m.track_running_stats):
            return _Rule("other", spatial)
        if m.training and isinstance(m, (nn.Dropout, nn.Dropout3d)):
            return _Rule("other", spatial)
        return _Rule("point", spatial)
    if n.op == "call_function" and n.target is torch.cat and _cat_dim(n) == 1:
        return _Rule("cat", spatial)
    if n.op == "call_function" and n.target in _ELEMENTWISE_FUNCTIONS:
        return _Rule("point", spatial)
    return _Rule("other", spatial)


def _window_out(rule: _Rule, box: Box, size: tuple[int, ...]) -> Box | None:
    """Output range (b exclusive, clipped) of a convolution or pooling whose input changes in ``box``."""
    out = []
    for (a, b), k, s, p, d, n in zip(
        box, rule.kernel, rule.stride, rule.padding, rule.dilation, size, strict=True
    ):
        lo = max(0, -(-(a + p - d * (k - 1)) // s))
        hi = min(n, (b - 1 + p) // s + 1)
        if lo >= hi:
            return None
        out.append((lo, hi))
    return tuple(out)


class DenseIncremental:
    """Network outputs for inputs occluded in boxes, each layer recomputed only where it changes.

    Build with :meth:`build`; ``None`` where the graph cannot be traced or nothing is saved.
    """

    def __init__(self, gm, rules, shapes, base, cost, full_at: float) -> None:
        self.gm, self.rules, self.shapes, self.base = gm, rules, shapes, base
        self.cost, self.full_at = cost, full_at
        self.nodes = list(gm.graph.nodes)
        self.modules = dict(gm.named_modules())
        self.input = next(n.name for n in self.nodes if n.op == "placeholder")

    @classmethod
    def build(cls, model: nn.Module, x: torch.Tensor, boxes: list[Box], full_at: float = 0.6, max_cost=0.8):
        """Trace ``model`` and keep its base outputs; ``None`` if the estimated cost exceeds ``max_cost``."""
        gm = trace(model)
        if gm is None or sum(n.op == "placeholder" for n in gm.graph.nodes) != 1:
            return None
        nd = x.ndim
        with torch.inference_mode():
            rec = _Recorder(gm)
            rec.run(x)
        shapes = {
            k: tuple(v.shape[2:])
            for k, v in rec.values.items()
            if isinstance(v, torch.Tensor) and v.ndim == nd and v.shape[0] == 1 and v.is_floating_point()
        }
        modules = dict(gm.named_modules())
        rules = {n.name: _rule(n, modules, shapes, nd - 2) for n in gm.graph.nodes if n.op != "placeholder"}
        self = cls(gm, rules, shapes, rec.values, rec.cost, full_at)
        cost, keep = 0.0, set()
        for box in boxes:  # every box (about 1 ms each): the base outputs any of them reads are kept
            regions = self.regions([box])
            cost += self.box_cost(regions)
            keep |= {name for name, region in regions.items() if region != "full"}
        self.estimated_fraction = cost / (len(boxes) * sum(rec.cost.values()))
        if self.estimated_fraction > max_cost:
            return None
        keep |= {a.name for n in self.nodes if n.name in keep for a in n.all_input_nodes}
        self.base = {k: v for k, v in rec.values.items() if k in keep or k not in shapes}
        return self

    def regions(self, boxes: list[Box]) -> dict[str, object]:
        """Per node: ``None`` (unchanged), ``"full"``, or the per-box changed boxes (a list)."""
        out: dict[str, object] = {self.input: list(boxes)}
        for n in self.nodes:
            if n.op in ("placeholder", "output", "get_attr"):
                continue
            rule = self.rules[n.name]
            ins = [out.get(a.name) for a in n.all_input_nodes if a.op != "get_attr"]
            if all(r is None for r in ins):
                out[n.name] = None
                continue
            if rule.kind == "other" or any(r == "full" for r in ins):
                out[n.name] = "full"
                continue
            size = self.shapes[n.name]
            if rule.kind == "window":
                per = [_window_out(rule, b, size) for b in out[rule.inputs[0]]]
                if any(p is None for p in per):
                    out[n.name] = "full"
                    continue
            else:
                per = []
                for i in range(len(boxes)):
                    parts = [out[a][i] for a in rule.inputs if out.get(a) is not None]
                    per.append(union(parts))
            vol = _volume(tuple((0, s) for s in size))
            sizes = [max(b[d][1] - b[d][0] for b in per) for d in range(len(size))]
            out[n.name] = "full" if math.prod(sizes) >= self.full_at * vol else per
        return out

    def box_cost(self, regions: dict[str, object]) -> float:
        """Estimated operations (the recorder's cost units) of one box's ``regions``."""
        cost = 0.0
        for name, region in regions.items():
            if name == self.input or region is None:
                continue
            frac = 1.0 if region == "full" else _volume(region[0]) / math.prod(self.shapes[name])
            cost += self.cost.get(name, 0.0) * frac
        return cost

    def outputs(self, boxes: list[Box], occlude, x: torch.Tensor) -> torch.Tensor:
        """Outputs of ``x`` occluded in each box (one item per box); ``occlude(part, box, start)``."""
        regions = self.regions(boxes)
        nb = len(boxes)
        env: dict[str, object] = {}
        for n in self.nodes:
            if n.op == "placeholder":
                part = self._placement(regions[n.name], self.shapes[n.name])
                t = self._gather(n.name, None, part, 0.0, x)
                for b, box in enumerate(boxes):
                    occlude(t[b : b + 1], box, part.starts[b])
                part.t = t
                env[n.name] = part
                continue
            if n.op == "output":
                value = env[n.args[0].name]
                if isinstance(value, _Part):
                    value = self._full(n.args[0].name, value, nb)
                elif value is None:
                    value = self.base[n.args[0].name].expand(nb, *self.base[n.args[0].name].shape[1:])
                return value
            region = regions.get(n.name)
            if n.op == "get_attr" or region is None:
                env[n.name] = None
                continue
            if region == "full":
                args = fx.node.map_arg(n.args, lambda a: self._value(a.name, env, nb))
                kwargs = fx.node.map_arg(n.kwargs, lambda a: self._value(a.name, env, nb))
                conv = self.rules[n.name].kind == "window" and _is_conv(self.modules.get(n.target))
                env[n.name] = self._window(n, args[0], full=True) if conv else self._call(n, args, kwargs)
                continue
            rule = self.rules[n.name]
            part = self._placement(region, self.shapes[n.name])
            if rule.kind == "window":
                src = rule.inputs[0]
                need = _Part(
                    [
                        tuple(a * s - p for a, s, p in zip(st, rule.stride, rule.padding, strict=True))
                        for st in part.starts
                    ],
                    tuple(
                        (m - 1) * s + d * (k - 1) + 1
                        for m, s, d, k in zip(part.size, rule.stride, rule.dilation, rule.kernel, strict=True)
                    ),
                    None,
                )
                xin = self._gather(src, env.get(src), need, rule.fill)
                part.t = self._window(n, xin)
            else:
                gathered = {a: self._gather(a, env.get(a), part, 0.0) for a in rule.inputs}
                args = fx.node.map_arg(
                    n.args, lambda a, g=gathered: g[a.name] if a.name in g else self._value(a.name, env, nb)
                )
                kwargs = fx.node.map_arg(n.kwargs, lambda a: self._value(a.name, env, nb))
                part.t = self._call(n, args, kwargs)
            env[n.name] = part
        raise RuntimeError("graph without output")

    @staticmethod
    def _placement(per: list[Box], size: tuple[int, ...]) -> _Part:
        """One region size for the batch (the largest), each placed around its box inside the grid."""
        ext = tuple(max(b[d][1] - b[d][0] for b in per) for d in range(len(size)))
        starts = [
            tuple(min(b[d][0], n - e) for d, (e, n) in enumerate(zip(ext, size, strict=True))) for b in per
        ]
        return _Part(starts, ext, None)

    def _gather(self, name: str, value, want: _Part, fill: float, x: torch.Tensor | None = None):
        """Node ``name`` on ``want``'s regions (may leave the grid: ``fill`` there), batch first."""
        if isinstance(value, _Part) and value.starts == want.starts and value.size == want.size:
            return value.t
        src = x if x is not None else self.base[name]
        size = self.shapes[name]
        nb = len(want.starts)
        inside = all(
            a >= 0 and a + e <= n for st in want.starts for a, e, n in zip(st, want.size, size, strict=True)
        )
        shape = (nb, src.shape[1], *want.size)
        out = (
            torch.empty(shape, dtype=src.dtype, device=src.device)
            if inside
            else torch.full(shape, fill, dtype=src.dtype, device=src.device)
        )
        for b, st in enumerate(want.starts):
            lo = [max(a, 0) for a in st]
            hi = [min(a + e, n) for a, e, n in zip(st, want.size, size, strict=True)]
            dst = tuple(slice(a - s, c - s) for a, c, s in zip(lo, hi, st, strict=True))
            grid = tuple(slice(a, c) for a, c in zip(lo, hi, strict=True))
            if isinstance(value, torch.Tensor):  # full
                out[(b, slice(None), *dst)] = value[(b, slice(None), *grid)]
                continue
            out[(b, slice(None), *dst)] = src[(0, slice(None), *grid)]
            if isinstance(value, _Part):  # paste the changed part where it overlaps
                p0, ext = value.starts[b], value.size
                a1 = [max(a, p) for a, p in zip(lo, p0, strict=True)]
                c1 = [min(c, p + e) for c, p, e in zip(hi, p0, ext, strict=True)]
                if all(a < c for a, c in zip(a1, c1, strict=True)):
                    d1 = tuple(slice(a - s, c - s) for a, c, s in zip(a1, c1, st, strict=True))
                    s1 = tuple(slice(a - p, c - p) for a, c, p in zip(a1, c1, p0, strict=True))
                    out[(b, slice(None), *d1)] = value.t[(b, slice(None), *s1)]
        return out

    def _full(self, name: str, part: _Part, nb: int) -> torch.Tensor:
        whole = _Part([(0,) * len(part.size)] * nb, self.shapes[name], None)
        return self._gather(name, part, whole, 0.0)

    def _value(self, name: str, env: dict, nb: int):
        """A node's full value for the batch (base where unchanged)."""
        value = env.get(name)
        if isinstance(value, _Part):
            return self._full(name, value, nb)
        if value is None:
            base = self.base[name]
            if isinstance(base, torch.Tensor) and name in self.shapes:
                return base.expand(nb, *base.shape[1:])
            return base
        return value

    def _window(self, n: fx.Node, xin: torch.Tensor, full: bool = False) -> torch.Tensor:
        """A convolution or pooling without padding (a region with its halo), or a convolution in full."""
        m = self.modules[n.target]
        nd = xin.ndim
        if _is_conv(m):
            pad = list(m.padding) if full else [0] * (nd - 2)
            if (
                xin.dtype == torch.float32
                and xin.device.type == "cpu"
                and torch.backends.mkldnn.is_available()
            ):
                # oneDNN directly: PyTorch picks its slower native kernel for 1x1x1 kernels on one thread
                # and for small batch-1 inputs, where oneDNN is up to 2x faster here
                w = m.weight if m.weight.dtype == xin.dtype else m.weight.to(xin.dtype)
                b = m.bias if m.bias is None or m.bias.dtype == xin.dtype else m.bias.to(xin.dtype)
                return torch.mkldnn_convolution(
                    xin.contiguous(), w, b, pad, list(m.stride), list(m.dilation), m.groups
                )
            return _CONV_FN[nd](xin, m.weight, m.bias, m.stride, pad, m.dilation, m.groups)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
            return _MAXPOOL[nd](xin, m.kernel_size, m.stride, 0, m.dilation)
        return _AVGPOOL[nd](xin, m.kernel_size, m.stride, 0)

    _call = TailRunner._call


def _is_conv(m) -> bool:
    return isinstance(m, _CONV)
