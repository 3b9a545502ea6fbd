"""Stand-ins for a skeleton's modules when members are stacked (`nas.batched`): dropout with
each member's own masks, batch norm over all members' channels in one kernel call, and (exact
mode) linear, conv and layer-norm layers run member by member with a lone run's kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class _Unbatched(torch.autograd.Function):
    """Under vmap, runs ``stacked(*args)`` on the whole stack (member dim first) instead of
    vmap's batching rules; autograd then differentiates `stacked`'s own ops."""

    generate_vmap_rule = False

    @staticmethod
    def forward(plain: Any, stacked: Any, *args: torch.Tensor) -> torch.Tensor:
        """Outside vmap (the meta-device trace only): the plain computation."""
        return plain(*args)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        """Nothing to save: only the vmap rule is differentiated."""

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:
        """Never reached: a skeleton is differentiated under vmap only."""
        raise NotImplementedError

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], plain: Any, stacked: Any,
             *args: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Move every member dim first (broadcasting unbatched inputs) and call `stacked`."""
        args = tuple(a.movedim(d, 0) if d is not None else a.expand(info.batch_size, *a.shape)
                     for a, d in zip(args, in_dims[2:], strict=True))
        return stacked(*args), 0


class _Masked(nn.Module):
    """Stands in for `nn.Dropout`: multiplies by this step's mask, which `functional_call`
    passes as the buffer ``mask`` (drawn outside vmap, per member)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.empty(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mask in training, the identity in evaluation (as `nn.Dropout`)."""
        return x * self.mask if self.training else x


class _BatchNorm(nn.Module):
    """`nn.BatchNorm*` of a stack: (M, N, C, ...) folded to (N, M*C, ...), one kernel call
    with the affine part inside it, per channel the arithmetic of a lone run."""

    def __init__(self, like: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.eps, self.momentum = like.eps, like.momentum
        self.weight, self.bias = like.weight, like.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, getattr(like, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch statistics (updating the running ones) in training, running ones in eval."""
        if self.training:
            self.num_batches_tracked.add_(1)
        return _Unbatched.apply(self._plain, self._stacked, x, self.weight, self.bias,
                                self.running_mean, self.running_var)

    def _plain(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, mean: torch.Tensor,
               var: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(x, mean, var, w, b, self.training, self.momentum,
                                        self.eps)

    def _stacked(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, mean: torch.Tensor,
                 var: torch.Tensor) -> torch.Tensor:
        m, n, c, *rest = x.shape
        out = self._plain(x.transpose(0, 1).reshape(n, m * c, *rest), w.reshape(-1),
                          b.reshape(-1), mean.view(-1), var.view(-1))  # views: updated in place
        return out.view(n, m, c, *rest).transpose(0, 1).contiguous()


class _PerMember(nn.Module):
    """A layer of a stack computed member by member with `fn(x, weight, bias)`, the kernel a
    lone run calls on the same tensors."""

    def __init__(self, like: nn.Module, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.weight, self.bias = like.weight, like.bias
        self.fn = fn  # a plain attribute (maybe a bound method of a meta module), no submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output for every member."""
        args = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
        return _Unbatched.apply(self._plain, self._stacked, *args)

    def _plain(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None
               ) -> torch.Tensor:
        return self.fn(x, w, b)

    def _stacked(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None
                 ) -> torch.Tensor:
        return torch.stack([self.fn(x[i], w[i], None if b is None else b[i])
                            for i in range(len(x))])


def stand_in(module: nn.Module, exact: bool) -> nn.Module | None:
    """What replaces `module` in the skeleton, or None to keep it (and vmap's rule)."""
    if isinstance(module, nn.Dropout):
        return _Masked()
    if (isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine
            and module.track_running_stats and module.momentum is not None):
        return _BatchNorm(module)  # exact and a single kernel call: used on every device
    if not exact:
        return None
    if isinstance(module, nn.Linear):
        return _PerMember(module, nn.functional.linear)
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        return _PerMember(module, module._conv_forward)
    if isinstance(module, nn.LayerNorm) and module.weight is not None:
        shape, eps = tuple(module.normalized_shape), module.eps
        return _PerMember(module, lambda x, w, b: nn.functional.layer_norm(x, shape, w, b, eps))
    return None
