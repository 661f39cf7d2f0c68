"""Grade CUDA-only student code on a CPU-only grader, as it would run on a GPU machine.

The course's workspace had a GPU, and many course solutions hard-code it: ``tensor.cuda()``,
``model.cuda()``, ``x.to("cuda")``, ``torch.device("cuda:0")``, ``x.type(torch.cuda.FloatTensor)``.
That code is correct where it was written, and Gradescope has no GPU. ``map_cuda_to_cpu()``
makes those calls land on the CPU instead, in the forked child that runs one grading test (so
the parent's torch never changes):

- ``Tensor.cuda`` and ``Module.cuda`` return the tensor or module on the CPU;
- ``Tensor.to`` and ``Module.to`` replace a CUDA device (str, ``torch.device`` or int index,
  positional or ``device=``) by ``"cpu"``;
- ``torch.cuda.FloatTensor`` and its siblings become the CPU tensor types, and
  ``Tensor.type("torch.cuda.FloatTensor")`` the CPU type's name.

``torch.cuda.is_available()`` stays False, so code that asks picks the CPU by itself. Only the
calls above are mapped; a tensor factory given ``device="cuda"`` (``torch.zeros(...,
device="cuda")``) still fails, and its message says so. Nothing changes on a machine with CUDA.
"""

from __future__ import annotations

import functools

import torch

CPU = "cpu"
# The legacy typed-tensor classes a course solution may name, e.g. torch.cuda.FloatTensor.
TENSOR_TYPES = ("FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
                "ShortTensor", "ByteTensor", "CharTensor", "BoolTensor")
CUDA_TYPE_PREFIX = "torch.cuda."


def is_cuda_device(value) -> bool:
    """True for "cuda", "cuda:0", torch.device("cuda") and the like."""
    if isinstance(value, torch.device):
        return value.type == "cuda"
    return isinstance(value, str) and value.split(":")[0].strip() == "cuda"


def _on_cpu(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` of a ``.to()`` call with every CUDA device replaced by the CPU."""
    args = tuple(CPU if is_cuda_device(arg) else arg for arg in args)
    if is_cuda_device(kwargs.get("device")):
        kwargs = {**kwargs, "device": CPU}
    return args, kwargs


def _cpu_type_name(value):
    if isinstance(value, str) and value.startswith(CUDA_TYPE_PREFIX):
        return "torch." + value[len(CUDA_TYPE_PREFIX):]
    return value


def map_cuda_to_cpu() -> bool:
    """Send CUDA placements to the CPU in this process; call it once, in a grading child.

    Returns:
        True when the mapping was installed, False when CUDA is available (nothing to do).
    """
    if torch.cuda.is_available() or getattr(torch, "_grader_cuda_on_cpu", False):
        return False
    tensor_to, module_to, tensor_type = torch.Tensor.to, torch.nn.Module.to, torch.Tensor.type

    @functools.wraps(tensor_to)
    def to_tensor(self, *args, **kwargs):
        args, kwargs = _on_cpu(args, kwargs)
        return tensor_to(self, *args, **kwargs)

    @functools.wraps(module_to)
    def to_module(self, *args, **kwargs):
        args, kwargs = _on_cpu(args, kwargs)
        return module_to(self, *args, **kwargs)

    @functools.wraps(tensor_type)
    def type_of(self, dtype=None, non_blocking=False, **kwargs):
        if dtype is None:
            return tensor_type(self)
        return tensor_type(self, _cpu_type_name(dtype), non_blocking, **kwargs)

    torch.Tensor.to = to_tensor
    torch.Tensor.cuda = lambda self, *args, **kwargs: tensor_to(self, CPU)
    torch.Tensor.type = type_of
    torch.nn.Module.to = to_module
    torch.nn.Module.cuda = lambda self, *args, **kwargs: module_to(self, CPU)
    for name in TENSOR_TYPES:
        setattr(torch.cuda, name, getattr(torch, name))
    torch._grader_cuda_on_cpu = True
    return True


def run_with_cuda_on_cpu(body) -> None:
    """Call ``body()`` after ``map_cuda_to_cpu()``: the wrapper of every grading test body."""
    map_cuda_to_cpu()
    body()
