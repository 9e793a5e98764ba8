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

``compiled``: False (eager), True (``"reduce-overhead"`` on CUDA, ``"default"`` elsewhere) or a
``torch.compile`` mode. The first call compiles (seconds to a minute, then cached on disk by
PyTorch); if compiling fails (no C++ compiler, say), a warning is given and the function runs
eagerly.
"""
from __future__ import annotations

import functools
import types
import warnings
import weakref

import torch

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def resolve_mode(compiled, device) -> str | None:
    """The ``torch.compile`` mode that ``compiled`` asks for on ``device``, or None (eager)."""
    if compiled is False or compiled is None:
        return None
    if compiled is True:
        return "reduce-overhead" if torch.device(device).type == "cuda" else "default"
    if compiled in MODES:
        return compiled
    raise ValueError(f"compiled must be True, False or one of {list(MODES)}, got {compiled!r}")


def compile_function(fn, compiled, device):
    """``fn`` compiled as ``compiled`` asks (see the module's docstring), else ``fn`` itself."""
    mode = resolve_mode(compiled, device)
    if mode is None:
        return fn
    # torch.compile keeps its compiled variants per code object, with a small limit (8) on
    # their number; past it, it runs eager code, with only a log line. Every fit compiles a
    # closure over its own model, and each chunk shape of an evaluation is a variant, so a grid
    # or a book chapter would soon reach the limit. A copy of the function with its own code
    # object has its own cache and limit. (Recompiling an architecture seen before is quick:
    # the generated kernels are cached on disk.)
    own = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__,
                             fn.__defaults__, fn.__closure__)
    compiled_fn = torch.compile(own, mode=mode, dynamic=False)
    state = {"fn": compiled_fn, "tried": False}

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if state["tried"]:
            return state["fn"](*args, **kwargs)
        state["tried"] = True
        try:
            return compiled_fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
            if not _is_compiler_failure(error):
                raise
            message = str(error).strip().splitlines()
            warnings.warn(f"torch.compile failed ({type(error).__name__}: "
                          f"{message[0] if message else ''}); running eagerly instead",
                          RuntimeWarning, stacklevel=2)
            state["fn"] = fn
            return fn(*args, **kwargs)

    return call


_PER_MODEL: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def compiled_for(model, key, fn, compiled, device):
    """``compile_function(fn, ...)`` kept for ``model`` (weakly), so that calling again with the
    same model reuses the compiled code. ``fn`` takes the model as its first argument (a closure
    over it would keep it alive)."""
    mode = resolve_mode(compiled, device)
    if mode is None:
        return fn
    try:
        cache = _PER_MODEL.setdefault(model, {})
    except TypeError:          # not weakly referenceable: compile for this call only
        return compile_function(fn, mode, device)
    if (key, mode, str(device)) not in cache:
        cache[key, mode, str(device)] = compile_function(fn, mode, device)
    return cache[key, mode, str(device)]


def _is_compiler_failure(error: Exception) -> bool:
    """Errors of the compiler itself, not of the user's inputs (which eager code would raise
    too)."""
    names = {c.__name__ for c in type(error).__mro__}
    module = type(error).__module__ or ""
    compiler = {"BackendCompilerFailed", "InductorError", "CppCompileError", "InvalidCxxCompiler"}
    return bool(names & compiler) or module.startswith(("torch._dynamo", "torch._inductor"))
