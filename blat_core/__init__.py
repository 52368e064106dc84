"""BLAT reproduction library: data, models, metrics."""

from blat_core import cpu_runtime as _cpu_runtime

_cpu_runtime.configure()  # before torch computes anything: $BLAT_CPU_RUNTIME=portable pins the CPU kernels
