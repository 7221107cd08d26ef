"""Kernel-launch counts with the torch profiler on CPU (a proxy for launches on a GPU).

Every leaf ATen operator that computes something launches (at least) one kernel on a GPU;
operators that only make views or allocate (``view``, ``reshape``, ``as_strided``, ``empty``...)
launch none. Counting the leaves of the CPU profile of one call therefore estimates the number
of kernels the same call issues eagerly on a GPU, independent of the machine's load.
"""

from __future__ import annotations

from typing import Callable

NO_KERNEL = frozenset({
    "aten::view", "aten::reshape", "aten::_reshape_alias", "aten::as_strided", "aten::expand",
    "aten::transpose", "aten::permute", "aten::select", "aten::slice", "aten::unsqueeze",
    "aten::squeeze", "aten::t", "aten::empty", "aten::empty_like", "aten::empty_strided",
    "aten::detach", "aten::alias", "aten::unflatten", "aten::flatten", "aten::split",
    "aten::split_with_sizes", "aten::chunk", "aten::narrow", "aten::lift_fresh", "aten::resolve_conj",
    "aten::resolve_neg", "aten::unbind", "aten::numpy_T", "aten::contiguous", "aten::_unsafe_view",
    "aten::result_type", "aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "aten::size",
    "aten::stride", "aten::dim", "aten::set_", "aten::to", "aten::_to_copy", "aten::expand_as",
    "aten::view_as", "aten::type_as", "aten::detach_", "aten::_has_compatible_shallow_copy_type",
    "aten::_nested_tensor_from_mask_left_aligned", "aten::scalar_tensor", "aten::broadcast_tensors",
    "aten::retain_grad", "aten::requires_grad_", "aten::_unique2",
})
"""Operators that make views, allocate or convert without computing (``aten::to`` is counted
through the ``aten::copy_`` it calls when it really copies)."""


def count_launches(fn: Callable[[], object]) -> tuple[int, int]:
    """Run ``fn`` once under the profiler; return (kernel launches, host syncs) it would cause.

    Launches: profiled leaf ATen operators outside :data:`NO_KERNEL`. Host syncs: calls that
    read a device value on the host (``aten::item`` / ``_local_scalar_dense``, ``nonzero``,
    ``is_nonzero``), each a full GPU pipeline stall when run on a GPU; reads inside
    ``Optimizer.step`` are left out (they read host-side step counters).
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    # Count an operator when it computes and none of its callees does: dispatcher wrappers
    # (aten::linear → aten::addmm) count once, through their innermost computing callee.
    children: dict[int, list] = {}
    for e in events:
        if e.cpu_parent is not None:
            children.setdefault(e.cpu_parent.id, []).append(e)
    memo: dict[int, bool] = {}

    def computes_below(e) -> bool:
        if e.id not in memo:
            memo[e.id] = any(c.name not in NO_KERNEL or computes_below(c) for c in children.get(e.id, []))
        return memo[e.id]

    launches = sum(1 for e in events if e.name not in NO_KERNEL and not computes_below(e))

    def in_optimizer(e) -> bool:  # optimizers read their host-side step counters: not device syncs
        while e is not None:
            if e.name.startswith("Optimizer."):
                return True
            e = e.cpu_parent
        return False

    syncs = sum(1 for e in events
                if e.name in ("aten::_local_scalar_dense", "aten::nonzero") and not in_optimizer(e))
    return launches, syncs
