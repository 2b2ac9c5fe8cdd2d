"""Task heads (Detect, Segment, Pose, OBB, Classify) between class counts: which output tensors depend on the class
count or keypoint shape, and the class branch rebuilt at the source's hidden width so that all of it but those
outputs transfers."""

from __future__ import annotations

import torch
from torch import nn

from .checkpoint import Checkpoint


_TASK_HEADS = frozenset({"Detect", "Segment", "Pose", "OBB", "Segment26", "Pose26", "OBB26", "Classify"})


def _class_output_keys(head: nn.Module) -> dict[str, str]:
    """Relative key -> ``"classes"`` / ``"keypoints"`` of every output tensor set by the class count or keypoint shape."""
    from .._ultralytics.head import task_output_branches

    keys = {}
    for branch in task_output_branches(head):
        for name in branch.outputs:
            mod = head.get_submodule(name)
            keys |= {f"{name}.{p}": branch.depends for p, _ in mod.named_parameters(recurse=False)}
    return keys


def _resized_conv(mod: nn.Conv2d, src: tuple, first: bool, last: bool):
    """A conv of the class branch rebuilt at the source width: a new module, None (fits already), or False (cannot)."""
    tgt = tuple(mod.weight.shape)
    if first and src[1] != tgt[1]:
        return False  # different input widths: another neck, nothing to adapt
    out_c = tgt[0] if last else src[0]
    if mod.groups == 1:
        in_c, groups = src[1], 1
    elif mod.groups == mod.in_channels == mod.out_channels and src[1] == 1:
        in_c = groups = src[0]
        out_c = src[0]
    else:
        return False
    if (out_c, in_c // groups) == tgt[:2]:
        return None
    new = nn.Conv2d(in_c, out_c, mod.kernel_size, mod.stride, mod.padding, mod.dilation, groups, bias=mod.bias is not None)
    if last and mod.bias is not None:
        with torch.no_grad():
            new.bias.copy_(mod.bias)  # the target's class prior (bias_init) keeps its value
    return new


def _branch_chain(head: nn.Module, branch) -> list[tuple[str, nn.Module]]:
    """``[(name, conv or BN)]`` of one output branch in order (names relative to the head), its outputs last."""
    seq = head.get_submodule(branch.hidden) if branch.hidden else nn.Sequential()
    mods = [(f"{branch.hidden}.{n}", m) for n, m in seq.named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    inside = {n for n, _ in mods}
    return mods + [(n, head.get_submodule(n)) for n in branch.outputs if n not in inside]


def _resized(mod: nn.Module, src: tuple, first: bool, last: bool):
    """``mod`` rebuilt at the source width: a new module, None (fits already), or False (cannot)."""
    if isinstance(mod, nn.BatchNorm2d):
        return None if src == tuple(mod.weight.shape) else nn.BatchNorm2d(src[0], eps=mod.eps, momentum=mod.momentum)
    if isinstance(mod, nn.Conv2d):
        return _resized_conv(mod, src, first, last)
    return None if src[1:] == tuple(mod.weight.shape)[1:] else False  # Classify's linear: fixed input width


def _class_branch_plan(head: nn.Module, src_shapes: dict[str, tuple]) -> list | None:
    """``[(name, new module, old module)]`` rebuilding the output branches at the source width; None if they cannot be."""
    from .._ultralytics.head import task_output_branches

    plan = []
    for branch in task_output_branches(head):
        mods = _branch_chain(head, branch)
        if not mods:
            return None
        for pos, (name, mod) in enumerate(mods):
            src = src_shapes.get(f"{name}.weight")
            if src is None:
                return None
            new = _resized(mod, src, pos == 0, name in branch.outputs)
            if new is False:
                return None
            if new is not None:
                plan.append((name, new, mod))
    return plan


def _adapt_class_branch(head: nn.Module, src_shapes: dict[str, tuple]) -> bool:
    """Rebuild the class branch of ``head`` at the source's hidden width. True if anything changed.

    Only when every conv/BN of the branch exists in the source, the branch inputs have the same width,
    and the output convolutions keep the target's class count.
    """
    plan = _class_branch_plan(head, src_shapes)
    for name, new, old in plan or []:
        parent = head.get_submodule(name.rpartition(".")[0])
        p = next(old.parameters(), None)
        if p is not None:
            new = new.to(device=p.device, dtype=p.dtype)
            for np_, op in zip(new.parameters(), old.parameters()):
                np_.requires_grad_(op.requires_grad)
        new.train(old.training)
        setattr(parent, name.rpartition(".")[2], new)
    return bool(plan)


def adapt_class_branch_to(model: nn.Module, state_dict: dict) -> bool:
    """Give ``model``'s Detect class branch the hidden width the checkpoint ``state_dict`` has. True if it changed.

    A transfer between class counts keeps the source's class-branch width (:func:`_adapt_class_branch`), so
    the model it writes cannot be rebuilt from its YAML alone: reading such a checkpoint back (safe loading,
    ``train model=X.pt``) applies the same rebuild before the weights are loaded.
    """
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential) or not len(layers):
        return False
    prefix = f"model.{len(layers) - 1}."
    shapes = {k[len(prefix):]: tuple(v.shape) for k, v in state_dict.items() if k.startswith(prefix)}
    return bool(shapes) and _adapt_class_branch(layers[-1], shapes)


def adopt_class_names(ckpt: Checkpoint, net: nn.Module, tgt_nc) -> None:
    """Class names follow the weights when the class count is the same and the target has only default names."""
    if ckpt.names and ckpt.nc is not None and ckpt.nc == tgt_nc and len(ckpt.names) == tgt_nc:
        names = getattr(net, "names", None)
        if not names or names == {i: str(i) for i in range(tgt_nc)}:
            net.names = {int(k): v for k, v in ckpt.names.items()}
