"""Output cropping for region targets: run the network's last local layers only where the target reads.

A segmentation target sums the output over a region; the decoder's full-resolution layers (often most
of a UNet's cost) are needed only on that region and its receptive field. Walking the traced graph
backwards from the output, every node whose operation is local (convolutions, transposed
convolutions, element-wise operations, channel concatenation, batch norm in eval mode) gets the box of
its output that the region needs; such nodes form the *tail*, computed on those boxes only, with the
zero padding of a convolution applied only where a box meets the border. Everything before the tail
runs as usual. The output is exact inside the region box (and zero elsewhere); the caller checks it
against full passes before use.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .boxes import Box, clip, union

_ELEMENTWISE_MODULES = (
    nn.modules.batchnorm._BatchNorm,
    nn.ReLU,
    nn.PReLU,
    nn.ELU,
    nn.LeakyReLU,
    nn.Dropout,
    nn.Dropout3d,
    nn.Identity,
    nn.Sigmoid,
    nn.Tanh,
)
_ELEMENTWISE_FUNCTIONS = (
    operator.add,
    operator.mul,
    operator.sub,
    torch.add,
    torch.mul,
    torch.sub,
    torch.relu,
    F.relu,
)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _conv_need(m, box: Box, sizes) -> Box:
    """Unclipped input range that a convolution's output ``box`` reads."""
    return tuple(
        (lo * s - p, (hi - 1) * s - p + d * (k - 1) + 1)
        for (lo, hi), s, p, d, k in zip(box, m.stride, m.padding, m.dilation, m.kernel_size, strict=True)
    )


def _convt_need(m, box: Box, sizes) -> Box:
    """Input range (clipped) that contributes to a transposed convolution's output ``box``."""
    out = []
    for (lo, hi), s, p, d, k, n in zip(
        box, m.stride, m.padding, m.dilation, m.kernel_size, sizes, strict=True
    ):
        a = -(-(lo + p - d * (k - 1)) // s)
        b = (hi - 1 + p) // s + 1
        out.append((max(a, 0), min(b, n)))
    return tuple(out)


class TailRunner:
    """Runs a GraphModule whose output is needed only inside ``out_box``; ``None`` from :meth:`build`
    where no node can be cropped usefully."""

    def __init__(self, gm: fx.GraphModule, need: dict[str, Box], shapes: dict[str, tuple]) -> None:
        self.gm, self.need, self.shapes = gm, need, shapes
        self.modules = dict(gm.named_modules())

    @classmethod
    def build(cls, gm: fx.GraphModule, inputs: tuple, out_box: Box, min_saving: float = 0.5):
        from .incremental import _Recorder

        with torch.inference_mode():
            rec = _Recorder(gm)
            rec.run(*inputs)
        nd = len(out_box)
        shapes = {
            k: tuple(v.shape[2:])
            for k, v in rec.values.items()
            if isinstance(v, torch.Tensor) and v.ndim == nd + 2
        }
        nodes = list(gm.graph.nodes)
        out_node = nodes[-1]
        result = out_node.args[0]
        if not isinstance(result, fx.Node) or shapes.get(result.name) is None:
            return None
        if len(out_box) != len(shapes[result.name]):
            return None
        modules = dict(gm.named_modules())
        need: dict[str, Box] = {result.name: clip(out_box, shapes[result.name])}
        tail: set[str] = set()
        for n in reversed(nodes[:-1]):
            if n.name not in need or n.op not in ("call_module", "call_function"):
                continue
            if any(u.name not in tail and u is not out_node for u in n.users):
                continue  # a user outside the tail needs all of it
            box, sizes = need[n.name], shapes[n.name]
            spatial_in = [a for a in n.all_input_nodes if a.name in shapes]
            if not spatial_in:
                continue
            if n.op == "call_module" and isinstance(modules[n.target], _CONV):
                m = modules[n.target]
                if m.padding_mode != "zeros" or isinstance(m.padding, str):
                    continue
                rule = {spatial_in[0].name: clip(_conv_need(m, box, sizes), shapes[spatial_in[0].name])}
            elif n.op == "call_module" and isinstance(modules[n.target], _CONV_T):
                m = modules[n.target]
                rule = {spatial_in[0].name: _convt_need(m, box, shapes[spatial_in[0].name])}
            elif (n.op == "call_module" and isinstance(modules[n.target], _ELEMENTWISE_MODULES)) or (
                n.op == "call_function"
                and (n.target in _ELEMENTWISE_FUNCTIONS or (n.target is torch.cat and _cat_dim(n) == 1))
            ):
                if any(shapes[a.name] != sizes for a in spatial_in):
                    continue
                rule = {a.name: box for a in spatial_in}
            else:
                continue
            tail.add(n.name)
            for name, b in rule.items():
                need[name] = b if name not in need else union([need[name], b])
        need = {k: v for k, v in need.items() if k in tail}
        total = sum(_volume(shapes[k]) for k in tail)
        if not tail or sum(_volume(b) for b in (need[k] for k in tail)) > (1 - min_saving) * total:
            return None
        return cls(gm, need, shapes)

    def __call__(self, *inputs):
        env: dict[str, object] = {}
        it = iter(inputs)
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                env[n.name] = next(it)
            elif n.op == "output":
                crop = env[n.args[0].name]
                box = self.need[n.args[0].name]
                out = crop.new_zeros(crop.shape[:2] + self.shapes[n.args[0].name])
                out[(slice(None), slice(None), *[slice(a, b) for a, b in box])] = crop
                return out
            elif n.name in self.need:
                env[n.name] = self._cropped(n, env)
            else:
                args = fx.node.map_arg(n.args, lambda a: self._full(a, env))
                kwargs = fx.node.map_arg(n.kwargs, lambda a: self._full(a, env))
                env[n.name] = self._call(n, args, kwargs)
        raise RuntimeError("graph without output")

    def _call(self, n: fx.Node, args, kwargs):
        if n.op == "call_module":
            return self.modules[n.target](*args, **kwargs)
        if n.op == "call_function":
            return n.target(*args, **kwargs)
        if n.op == "call_method":
            return getattr(args[0], n.target)(*args[1:], **kwargs)
        if n.op == "get_attr":
            return _attr(self.gm, n.target)
        raise RuntimeError(f"unsupported node {n.op}")

    def _full(self, a: fx.Node, env):
        return env[a.name]

    def _region(self, a: fx.Node, env, box: Box) -> torch.Tensor:
        """Input ``a`` on ``box`` (its coordinates, may reach outside: zero padded there)."""
        value = env[a.name]
        have = self.need.get(a.name, tuple((0, s) for s in self.shapes[a.name]))
        sizes = self.shapes[a.name]
        inner = clip(box, sizes)
        sl = tuple(slice(lo - h0, hi - h0) for (lo, hi), (h0, _h1) in zip(inner, have, strict=True))
        part = value[(slice(None), slice(None), *sl)]
        pad = []
        for (lo, hi), (i0, i1) in reversed(list(zip(box, inner, strict=True))):
            pad += [i0 - lo, hi - i1]
        return F.pad(part, pad) if any(pad) else part

    def _cropped(self, n: fx.Node, env) -> torch.Tensor:
        box = self.need[n.name]
        if n.op == "call_module" and isinstance(self.modules[n.target], _CONV):
            m = self.modules[n.target]
            x = self._region(n.args[0], env, _conv_need(m, box, self.shapes[n.name]))
            return _convnd(x, m)
        if n.op == "call_module" and isinstance(self.modules[n.target], _CONV_T):
            m = self.modules[n.target]
            rng = _convt_need(m, box, self.shapes[n.args[0].name])
            x = self._region(n.args[0], env, rng)
            fn = {3: F.conv_transpose1d, 4: F.conv_transpose2d, 5: F.conv_transpose3d}[x.ndim]
            y = fn(x, m.weight, m.bias, m.stride, 0, 0, m.groups, m.dilation)
            # y index j is output position a*s + j - p (a: crop start); keep the box
            sl = tuple(
                slice(lo - (a * s - p), hi - (a * s - p))
                for (lo, hi), (a, _b), s, p in zip(box, rng, m.stride, m.padding, strict=True)
            )
            return y[(slice(None), slice(None), *sl)]
        args = fx.node.map_arg(
            n.args, lambda a: self._region(a, env, box) if a.name in self.shapes else env[a.name]
        )
        kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a.name])
        return self._call(n, args, kwargs)


def _convnd(x: torch.Tensor, m) -> torch.Tensor:
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.ndim]
    return fn(x, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)


def _attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _cat_dim(n: fx.Node) -> int | None:
    dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
    return dim if isinstance(dim, int) else None


def _volume(box_or_shape) -> int:
    """Voxels in a box ``((a, b), ...)`` or a shape ``(n, ...)``."""
    return math.prod((item[1] - item[0]) if isinstance(item, tuple) else item for item in box_or_shape)
