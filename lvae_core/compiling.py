"""Optional ``torch.compile`` of the hot functions (the training step, the log weights of
the log-likelihood estimate).

The networks here are small MLPs, so an eager step is a long chain of small kernels: the
matrix products plus dozens of element-wise operations (softplus, batch norm, the Gaussian
log densities, the KL terms). Compiling fuses the element-wise work into few kernels; on a
GPU, ``"reduce-overhead"`` also replays the whole forward and backward pass as a CUDA graph,
one launch instead of hundreds. The numbers are those of the same mathematics, but not
bit for bit those of eager mode (fused kernels round differently, and compiled code draws
its Gaussian noise from a different random stream), so a compiled fit is cached apart from
an eager one. A given seed still gives the same numbers run after run.

``compile``: False (eager), True (``"reduce-overhead"`` on CUDA, ``"default"`` elsewhere) or a
``torch.compile`` mode. The first call compiles (seconds to a minute, then cached on disk by
PyTorch); if compiling fails (no C++ compiler, say), a warning is given and the function runs
eagerly.
"""
from __future__ import annotations

import functools
import warnings

import torch

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(compile, device) -> str | None:
    """The ``torch.compile`` mode that ``compile`` asks for on ``device``, or None (eager)."""
    if compile is False or compile is None:
        return None
    if compile is True:
        return "reduce-overhead" if torch.device(device).type == "cuda" else "default"
    if compile in MODES:
        return compile
    raise ValueError(f"compile must be True, False or one of {list(MODES)}, got {compile!r}")


def compile_function(fn, compile, device, *, fresh: bool = False):
    """``fn`` compiled as ``compile`` asks (see the module's docstring), else ``fn`` itself.
    ``fresh``: clear PyTorch's compilation caches first (see below)."""
    mode = compile_mode(compile, device)
    if mode is None:
        return fn
    # With fresh=True (fit does this): each fit compiles its own closure over its own model. Dynamo keeps one cache per code
    # object with a small limit on entries, so many fits in one process (a grid, a book
    # chapter) would exhaust it and silently fall back to eager code; starting afresh keeps
    # every fit compiled. Recompiling an architecture seen before is quick: the generated
    # kernels are cached on disk.
    if fresh:
        torch.compiler.reset()
    compiled = torch.compile(fn, mode=mode, dynamic=False)
    state = {"fn": compiled, "tried": False}

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if state["tried"]:
            return state["fn"](*args, **kwargs)
        state["tried"] = True
        try:
            return compiled(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
            if not _is_compiler_failure(error):
                raise
            warnings.warn(f"torch.compile failed ({type(error).__name__}: "
                          f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}); "
                          "running eagerly instead", RuntimeWarning, stacklevel=2)
            state["fn"] = fn
            return fn(*args, **kwargs)

    return call


def _is_compiler_failure(error: Exception) -> bool:
    """Errors of the compiler itself, not of the user's inputs (which eager code would raise too)."""
    names = {c.__name__ for c in type(error).__mro__}
    module = type(error).__module__ or ""
    return bool(names & {"BackendCompilerFailed", "InductorError", "CppCompileError",
                         "InvalidCxxCompiler"}) or module.startswith(("torch._dynamo", "torch._inductor"))
