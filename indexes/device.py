"""Where FAISS runs: GPU detection and resources, CPU thread counts and kernel settings (the only place that decides)."""

from typing import Any

import torch  # before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
from threadpoolctl import threadpool_limits

from . import divergences
from .errors import IndexError_
from .scan import batch_gemm, load_kernel


def faiss_gpu_available() -> bool:
    """True when the installed FAISS has GPU support and sees at least one device."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def create_gpu_resources(setting: str) -> Any | None:
    """GPU resources for `FaissIndex`, or None to stay on CPU.

    Args:
        setting: `"auto"` (GPU when available), `"true"` (GPU or fail), `"false"` (CPU).

    Raises:
        IndexError_: `"true"` without GPU FAISS or a visible device; never falls back silently.
    """
    if setting == "false":
        return None
    if faiss_gpu_available():
        return faiss.StandardGpuResources()
    if setting == "true":
        raise IndexError_(
            "LOGITSEARCH_FAISS_GPU=true but FAISS has no GPU support here or sees no CUDA device: install "
            "`pip install 'logit-search[gpu]'` (faiss-gpu-cu12) on a machine with an NVIDIA GPU, or set it to auto"
        )
    return None


def configure_cpu(num_threads: int) -> None:
    """Set the CPU threads of FAISS (OpenMP), of numpy's and torch's BLAS (the scans of `indexes.scan`) and of the
    divergence kernels, make batched searches use BLAS, measure which BLAS the batch scan uses (once per process, at
    these thread counts) and load the scan's compiled kernel, all before any request.

    FAISS 1.15 only switches to BLAS when `num_queries * dim >= 128000`, so a batch of 256 queries over
    100 classes stays on a kernel 4-8x slower (PERF-NOTES.md); the older threshold of 20 queries fixes it.
    """
    faiss.omp_set_num_threads(num_threads)
    threadpool_limits(limits=num_threads, user_api="blas")
    torch.set_num_threads(num_threads)
    divergences.set_num_threads(num_threads)
    faiss.cvar.distance_compute_blas_threshold = 20
    batch_gemm()
    load_kernel()
