"""XLA set-up the tests share: the cheap-compile flags the root ``conftest.py`` sets, child
JAX processes on several virtual CPU devices (a JAX process fixes its device count at
start-up, so multi-device checks run in a child), and the ways back to optimised code for
a long-running program or a notebook kernel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LLVM_O0_FLAG = "--xla_backend_optimization_level=0"
FAST_COMPILE_XLA_FLAGS = (f"{LLVM_O0_FLAG} --xla_llvm_disable_expensive_passes=true "
                          "--xla_cpu_use_fusion_emitters=false")


def use_fast_compile_flags() -> None:
    """Put ``FAST_COMPILE_XLA_FLAGS`` in front of this process's ``XLA_FLAGS`` (once: xdist
    workers inherit them), so flags already there come after ours and win. Must run before
    JAX starts its backend."""
    flags = os.environ.get("XLA_FLAGS", "")
    if FAST_COMPILE_XLA_FLAGS not in flags:
        os.environ["XLA_FLAGS"] = f"{FAST_COMPILE_XLA_FLAGS} {flags}".strip()


def cpu_devices_env(devices: int) -> dict[str, str]:
    """This process's environment for a child on ``devices`` virtual CPU devices, float32 by
    default, keeping the XLA flags the root ``conftest.py`` set and importing this checkout."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    env.pop("JAX_ENABLE_X64", None)
    return env


def run_on_cpu_devices(*args: str, devices: int = 8, timeout: float = 300
                       ) -> subprocess.CompletedProcess:
    """Run ``python args...`` from the repository root on ``devices`` CPU devices; assert it
    exits 0 (showing the end of its stderr if not) and return the finished process."""
    proc = subprocess.run([sys.executable, *args], env=cpu_devices_env(devices), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# The root conftest.py compiles everything with LLVM at -O0, which is right for the hundreds
# of small programs most tests run once. A test whose time goes into running one long
# program (a training run) passes this to ``jax.jit(..., compiler_options=...)`` to get the
# default optimised code back for that program only.
OPTIMIZED_CODEGEN = {"xla_backend_optimization_level": 3}


def optimized_codegen_env() -> dict[str, str]:
    """This process's environment without the root ``conftest.py``'s -O0 flag, for a child
    whose time goes into running programs rather than compiling them (a notebook kernel)."""
    flags = os.environ.get("XLA_FLAGS", "").replace(LLVM_O0_FLAG, "")
    return dict(os.environ, XLA_FLAGS=" ".join(flags.split()))


# Collectives that move parameters between devices (an all-reduce of a scalar norm or loss is
# not one of them).
DATA_MOVING_COLLECTIVES = ("all-gather", "all-to-all", "collective-permute", "reduce-scatter")


def hlo_ops(hlo_text: str, kinds: tuple[str, ...]) -> list[str]:
    """The instructions of compiled HLO text whose opcode is one of ``kinds`` (async
    ``-start`` forms included), one line each, e.g. to assert that a sharded program
    gathers nothing: ``hlo_ops(compiled.as_text(), DATA_MOVING_COLLECTIVES) == []``."""
    pattern = re.compile(r"=\s*\S.*?\s(" + "|".join(map(re.escape, kinds)) + r")(?:-start)?\(")
    return [line.strip()[:200] for line in hlo_text.splitlines() if pattern.search(line)]
