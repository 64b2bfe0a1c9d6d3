"""SmoothGrad (Smilkov et al. 2017) over any gradient method, with the noise samples batched.

The base method (``saliency``, ``gradient``, ``input_x_gradient``, ``ig``, ``gradcam``, ``gradcampp``)
is applied to ``samples`` noisy copies ``x + N(0, sigma)`` and the results are aggregated:

* ``mean``: Captum's ``NoiseTunnel(nt_type="smoothgrad")``;
* ``mean_square``: Captum's ``smoothgrad_sq``;
* ``rms``: MONAI's ``SmoothGrad(magnitude=True)``, ``sqrt(sum a^2) / samples``.

``sigma`` is ``noise * (max(x) - min(x))`` (MONAI's ``stdev_spread``) unless ``stdev`` is given.
Noise sample ``i`` is the ``i``-th draw of ``torch.normal`` from a generator on the input's device
seeded with ``seed``, so a seed fixes the map on a device, and the draws equal MONAI's (which draws on
the input's device) after ``torch.manual_seed(seed)``.

Precision: ``precision="bf16"`` runs the passes in bf16 autocast where one pass at ``x`` differs from
fp32 by at most ``tolerance`` (relative L2 of the input gradient; default 1e-2, otherwise fp32 with a
warning). SmoothGrad is a Monte-Carlo estimate whose own sampling error is far larger than 1e-2 (two
25-sample runs with different seeds correlate about 0.83 on a DenseNet121), so a researcher may accept a
larger ``tolerance`` to use bf16 on a CPU with native bf16 (2-6x faster passes there); the measured
error is recorded in the provenance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import XAIError
from .budget import ChunkReport, MemoryBudget, PeakMemory
from .gradient_method import make_baseline
from .gradients import gradient_bytes_per_point
from .kernels import attribute_inputs, get_kernel, reduce_channels
from .params import MethodParams, param
from .precision import PRECISIONS, checked_dtype
from .registry import Attribution, register
from .sliding import SlidingWindowModel
from .targets import Target

AGGREGATES = ("mean", "mean_square", "rms")


class NoiseSource:
    """Noisy copies of ``x[0]``, drawn in order from one seeded generator and kept until released."""

    def __init__(self, x: torch.Tensor, stdev: float, seed: int) -> None:
        self.x = x[0]
        self.stdev = float(stdev)
        self.generator = torch.Generator(device=x.device).manual_seed(int(seed))
        self.drawn = 0
        self.kept: dict[int, torch.Tensor] = {}

    def get(self, i: int, device: torch.device) -> torch.Tensor:
        while self.drawn <= i:
            noise = torch.normal(
                0.0, self.stdev, size=tuple(self.x.shape), generator=self.generator, device=self.x.device
            )
            self.kept[self.drawn] = noise
            self.drawn += 1
        return (self.x.to(device) + self.kept[i].to(device=device, dtype=self.x.dtype)).detach()

    def release(self, i: int) -> None:
        self.kept.pop(i, None)


class Aggregate:
    """Running aggregate of per-sample attributions (fp32)."""

    def __init__(self, how: str, samples: int) -> None:
        if how not in AGGREGATES:
            raise XAIError(f"unknown SmoothGrad aggregate '{how}'", f"use one of {', '.join(AGGREGATES)}")
        self.how, self.samples, self.total = how, samples, None

    def add(self, attr: torch.Tensor) -> None:
        value = attr.float() if self.how == "mean" else attr.float() ** 2
        self.total = value if self.total is None else self.total.to(value.device) + value

    def result(self) -> torch.Tensor:
        if self.how == "rms":
            return self.total.sqrt() / self.samples
        return self.total / self.samples


@dataclass(frozen=True)
class SmoothGradParams(MethodParams):
    """SmoothGrad parameters."""

    base: str = param("saliency", "gradient method averaged over the noisy copies")
    samples: int = param(25, "noisy copies", minimum=1)
    noise: float = param(0.15, "noise standard deviation as a fraction of the intensity range", minimum=0.0)
    stdev: float | None = param(None, "absolute noise standard deviation (overrides noise)", minimum=0.0)
    aggregate: str = param("mean", "how the samples are combined", choices=AGGREGATES)
    seed: int = param(0, "noise seed")
    base_params: dict | None = param(None, "parameters of the base method (e.g. layer, baseline)")
    precision: str = param("auto", "arithmetic precision", choices=PRECISIONS)
    tolerance: float = param(1e-2, "largest reduced-precision error accepted", minimum=0.0)
    chunk: int | None = param(None, "noisy copies per pass; default from the memory budget", minimum=1)


@register(
    "smoothgrad",
    signed=False,
    params=SmoothGradParams,
    description="SmoothGrad over any gradient method (saliency by default), noise samples batched",
)
def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    base: str = "saliency",
    samples: int = 25,
    noise: float = 0.15,
    stdev: float | None = None,
    aggregate: str = "mean",
    seed: int = 0,
    base_params: dict | None = None,
    precision: str = "auto",
    tolerance: float = 1e-2,
    budget: MemoryBudget | None = None,
    chunk: int | None = None,
    progress=None,
) -> Attribution:
    """Average of the base method over noisy copies of ``x``."""
    start = time.perf_counter()
    samples = int(samples)
    if samples < 1:
        raise XAIError("SmoothGrad needs at least one sample", "set samples to 1 or more")
    sigma = float(stdev) if stdev is not None else float(noise) * float(x.max() - x.min())
    source = NoiseSource(x, sigma, seed)
    agg = Aggregate(aggregate, samples)
    base_params = dict(base_params or {})
    params = {"base": base, "samples": samples, "stdev": sigma, "aggregate": aggregate, "seed": int(seed)}
    params.update({"noise": noise, "precision": precision, "tolerance": float(tolerance)})
    params["base_params"] = base_params

    def finish(i: int, attr: torch.Tensor) -> None:
        agg.add(attr)
        source.release(i)

    report = ChunkReport()
    if base in ("gradcam", "gradcampp"):
        from .cam import cam_over_inputs

        with PeakMemory(x.device) as peak:
            info = cam_over_inputs(
                model,
                target,
                source.get,
                samples,
                finish,
                x=x,
                plus=base == "gradcampp",
                layer=base_params.get("layer"),
                budget=budget,
                chunk=chunk,
                progress=progress,
                report=report,
            )
        attr, signed = agg.result()[0], False
    elif isinstance(model, SlidingWindowModel):
        kernel, info = get_kernel(base), {}
        baseline = make_baseline(x, base_params.get("baseline", 0.0))
        with PeakMemory(x.device) as peak:
            for i in range(samples):  # each noisy copy goes through the windows (see sliding.py)
                attr, _scores, info = model.run_kernel(
                    kernel,
                    source.get(i, x.device)[None],
                    target,
                    base_params,
                    baseline,
                    precision=precision,
                    tolerance=tolerance,
                    budget=budget,
                )
                finish(i, attr)
                if progress:
                    progress((i + 1) / samples, f"SmoothGrad: sample {i + 1}/{samples}")
        attr = reduce_channels(agg.result(), kernel.reduce)
        signed = kernel.signed and aggregate == "mean"
    else:
        kernel = get_kernel(base)
        dtype, info = checked_dtype(model, x, target, precision, gradient=True, tolerance=float(tolerance))
        with PeakMemory(x.device) as peak:
            attribute_inputs(
                kernel,
                model,
                target,
                source.get,
                samples,
                make_baseline(x, base_params.get("baseline", 0.0)),
                base_params,
                finish,
                device=x.device,
                per_point_bytes=gradient_bytes_per_point(
                    model, x, samples * len(kernel.nodes(base_params)[0]), budget
                ),
                budget=budget,
                dtype=dtype,
                chunk=chunk,
                progress=progress,
                report=report,
            )
        attr = reduce_channels(agg.result(), kernel.reduce)
        signed = kernel.signed and aggregate == "mean"
    info = {**info, **peak.as_dict(), "chunks": report.as_dict(), "seconds": time.perf_counter() - start}
    return Attribution(attr.cpu(), signed=signed, method="smoothgrad", params=params, info=info)
