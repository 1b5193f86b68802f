"""P networks of one architecture fused into one: grouped convolutions, per-individual BatchNorm and heads.

Individual ``k`` owns channels ``[k*C, (k+1)*C)`` of every feature map, so a grouped conv (groups = P), a
BatchNorm over P*C channels (statistics per channel = per individual) and every channel-wise op (activations,
pooling, residual sums, flatten) compute exactly what each network computes alone. Every tensor of the fused
network is the P individual tensors concatenated along dim 0 (Linear weights included), so moving weights in and
out is a view and a copy.

The fused network is a copy of an individual :class:`GeneNet` whose leaf modules are swapped; the model's own
``forward`` methods run unchanged. That holds for any model whose forward code is channel-wise (no concatenation
or mixing along channels outside convs and linears); the equivalence tests check it for every registered model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from engine.models import GeneNet

#: Modules without parameters or buffers that act on each channel separately.
CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.MaxPool2d,
               nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Sequential, nn.ModuleList)


class GroupedLinear(nn.Module):
    """P independent ``nn.Linear`` layers: input (N, P*in) -> output (N, P*out).

    ``weight`` is (P*out, in) and ``bias`` (P*out,): the P individual tensors stacked along dim 0.
    """

    def __init__(self, population: int, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.population, self.in_features, self.out_features = population, in_features, out_features
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(population * out_features, in_features, **kw))
        self.bias = nn.Parameter(torch.empty(population * out_features, **kw)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        p, o, i = self.population, self.out_features, self.in_features
        n = x.shape[0]
        xs = x.reshape(n, p, i).transpose(0, 1)  # (P, N, in)
        w = self.weight.view(p, o, i).transpose(1, 2)  # (P, in, out)
        if self.bias is None:
            out = torch.bmm(xs, w)
        else:
            out = torch.baddbmm(self.bias.view(p, 1, o), xs, w)
        return out.transpose(0, 1).reshape(n, p * o)

    def extra_repr(self) -> str:
        return f"population={self.population}, in_features={self.in_features}, out_features={self.out_features}"


def _grouped(mod: nn.Module, p: int, path: str) -> nn.Module:
    """The P-fold version of one leaf module (same hyper-parameters, P times the channels), on the meta device:
    its values come from the individuals (:meth:`PopulationNet.load`), so a random init would be wasted."""
    dev = torch.device("meta")
    if isinstance(mod, nn.Conv2d):
        if mod.padding_mode != "zeros":
            raise TypeError(f"population network: {path}: padding_mode {mod.padding_mode!r} is not supported")
        return nn.Conv2d(p * mod.in_channels, p * mod.out_channels, mod.kernel_size, stride=mod.stride,
                         padding=mod.padding, dilation=mod.dilation, groups=p * mod.groups,
                         bias=mod.bias is not None, device=dev, dtype=mod.weight.dtype)
    if isinstance(mod, nn.BatchNorm2d):
        ref = mod.weight if mod.weight is not None else mod.running_mean
        return nn.BatchNorm2d(p * mod.num_features, eps=mod.eps, momentum=mod.momentum, affine=mod.affine,
                              track_running_stats=mod.track_running_stats, device=dev,
                              dtype=ref.dtype if ref is not None else None)
    if isinstance(mod, nn.Linear):
        return GroupedLinear(p, mod.in_features, mod.out_features, bias=mod.bias is not None, device=dev,
                             dtype=mod.weight.dtype)
    raise TypeError(f"population network: no grouped form of {type(mod).__name__} at {path!r}")


def _fuse(module: nn.Module, p: int, prefix: str = "") -> None:
    """Swap, in place, every leaf module of ``module`` for its P-fold version."""
    for name, child in list(module.named_children()):
        path = f"{prefix}{name}"
        if isinstance(child, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            setattr(module, name, _grouped(child, p, path))
        elif any(True for _ in child.parameters(recurse=False)) or any(True for _ in child.buffers(recurse=False)):
            raise TypeError(f"population network: no grouped form of {type(child).__name__} at {path!r}")
        elif next(child.children(), None) is not None:  # a container: its forward must be channel-wise
            _fuse(child, p, path + ".")
        elif not isinstance(child, CHANNELWISE):
            raise TypeError(f"population network: {type(child).__name__} at {path!r} is not known to be channel-wise")


class PopulationNet(nn.Module):
    """P networks of one architecture trained as one: ``forward`` maps (B, P*C, H, W) to logits (B, P, classes).

    Build it from P individuals with :meth:`from_models`; :meth:`load` copies a new set of individuals into the
    same modules (so a compiled forward is reused across generations); :meth:`states` and :meth:`write` move the
    weights back out, keyed exactly like each individual's ``state_dict``.
    """

    def __init__(self, template: GeneNet, population: int, models: Sequence[GeneNet] | None = None) -> None:
        """P copies of ``template`` (of ``models`` when given: P models of the template's architecture and sizes),
        on the template's device."""
        super().__init__()
        if population < 1:
            raise ValueError(f"population must be >= 1 (got {population})")
        self.population = population
        self.arch = template.arch
        self.num_classes = template.head.out_features
        net = copy.deepcopy(template)
        _fuse(net, population)
        self.net = net.to_empty(device=next(template.parameters()).device)
        self._shapes = {k: tuple(v.shape) for k, v in template.state_dict().items()}
        self._dtypes = {k: v.dtype for k, v in template.state_dict().items()}
        own = self.net.state_dict()
        if set(own) != set(self._shapes):
            raise TypeError(f"population network of {self.arch}: state keys differ from the individual's")
        for k, shape in self._shapes.items():
            want = shape if len(shape) == 0 else (population * shape[0], *shape[1:])
            if tuple(own[k].shape) != want:
                raise TypeError(f"population network of {self.arch}: {k} has shape {tuple(own[k].shape)}, "
                                f"expected {want}")
        self.load(models if models is not None else [template] * population)

    @classmethod
    def from_models(cls, models: Sequence[GeneNet]) -> PopulationNet:
        """A population network holding copies of ``models`` (same architecture and sizes), on their device."""
        if not models:
            raise ValueError("a population network needs at least one model")
        return cls(models[0], len(models), models)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return out.view(out.shape[0], self.population, self.num_classes)

    @torch.no_grad()
    def load(self, models: Sequence[GeneNet]) -> None:
        """Copy the weights and BN statistics of ``models`` (individual k -> slice k) into this network."""
        if len(models) != self.population:
            raise ValueError(f"expected {self.population} models, got {len(models)}")
        states = [m.state_dict() for m in models]
        for k, dst in self.net.state_dict().items():
            if any(tuple(s[k].shape) != self._shapes[k] for s in states):
                raise ValueError(f"model {k} does not match the population network's shape {self._shapes[k]}")
            if dst.dim() == 0:  # num_batches_tracked: one counter for all (they train in lockstep)
                dst.copy_(states[0][k])
                continue
            n = self._shapes[k][0]
            for i, s in enumerate(states):  # straight into slice i: no stacked copy on the host
                src = s[k]  # from page-locked memory (networks prepared ahead on CUDA) without blocking the host
                dst[i * n:(i + 1) * n].copy_(src, non_blocking=src.is_pinned())

    @torch.no_grad()
    def states(self) -> list[dict[str, Tensor]]:
        """Per-individual state dicts, contiguous CPU tensors of the individuals' dtypes (one transfer per tensor).

        Individual k's tensors are views of one host copy of each fused tensor (no second copy on the host).
        """
        out: list[dict[str, Tensor]] = [{} for _ in range(self.population)]
        for k, t in self.net.state_dict().items():
            cpu = t.detach().contiguous().to("cpu", self._dtypes[k], copy=True)  # channels_last: reordered on the GPU
            if cpu.dim() == 0:
                for s in out:
                    s[k] = cpu.clone()
                continue
            parts = cpu.view(self.population, *self._shapes[k]).unbind(0)
            for s, part in zip(out, parts, strict=True):
                s[k] = part
        return out

    @torch.no_grad()
    def grouped(self, tensors: Sequence[dict[str, Tensor]], *, default: float = 1.0) -> dict[str, Tensor]:
        """Per-individual tensors keyed like the parameters, concatenated into the population layout.

        Keys missing for an individual are filled with ``default`` (e.g. learning-rate factors of 1).
        """
        out = {}
        for name, p in self.net.named_parameters():
            parts = [t[name].to(p.device, p.dtype) if name in t
                     else torch.full(self._shapes[name], default, device=p.device, dtype=p.dtype) for t in tensors]
            out[name] = torch.stack(parts).view(p.shape).contiguous(memory_format=_format_of(p))
        return out


def _format_of(t: Tensor) -> torch.memory_format:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
