"""Build of gru_cuda: the CPU kernels always, the CUDA kernels when torch is a CUDA
build and a CUDA toolkit is found (GRU_CUDA_FORCE_CPU=1 / GRU_CUDA_FORCE_CUDA=1 override)."""
import glob
import os
import re
import shutil
import sys

from setuptools import setup


def _toolkit_from_nvcc():
    """The toolkit folder behind `nvcc` on PATH, seeing through wrapper scripts."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    nvcc = os.path.realpath(nvcc)
    try:
        with open(nvcc, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head.startswith(b"#!"):  # a wrapper: look for the real nvcc it runs
        match = re.search(rb"(/\S+)/bin/nvcc\b", head)
        return match.group(1).decode() if match else None
    return os.path.dirname(os.path.dirname(nvcc))


# torch.utils.cpp_extension reads CUDA_HOME when imported, so settle it first.
if not os.environ.get("CUDA_HOME") and not os.environ.get("CUDA_PATH"):
    _home = _toolkit_from_nvcc()
    if _home and os.path.isfile(os.path.join(_home, "bin", "nvcc")):
        os.environ["CUDA_HOME"] = _home

try:
    import torch  # noqa: E402
except ImportError:
    # pyproject.toml does not list torch as a build requirement: pip's build isolation
    # would fetch the newest torch to build against, whatever the environment holds, and
    # the extension would then fail to load beside another torch.
    sys.exit("gru_cuda: torch is needed to build and was not found. The extension must be built "
             "against the torch it will run with: install torch first (pip install torch), "
             "then build without build isolation, which would hide it: "
             "pip install --no-build-isolation .")
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FORCE_CPU = os.environ.get("GRU_CUDA_FORCE_CPU") == "1"
FORCE_CUDA = os.environ.get("GRU_CUDA_FORCE_CUDA") == "1"


def _cuda_blocker():
    """Why the CUDA kernels cannot be built here, or None when they can."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is not a CUDA build"
    if CUDA_HOME is None or not os.path.isfile(os.path.join(CUDA_HOME, "bin", "nvcc")):
        return "no CUDA toolkit found (set CUDA_HOME or put nvcc on PATH)"
    return None


def _cublas_include_dirs():
    """The toolkit may lack the cuBLAS headers ATen's CUDA headers include; the
    nvidia-* wheels that come with torch carry them."""
    if os.path.isfile(os.path.join(CUDA_HOME, "include", "cublas_v2.h")):
        return []
    found = []
    for site in sys.path:
        found += glob.glob(os.path.join(site, "nvidia", "*", "include", "cublas_v2.h"))
        found += glob.glob(os.path.join(site, "nvidia", "cublas", "include", "cublas_v2.h"))
    return [os.path.dirname(found[0])] if found else []


def _shared_libstdcxx():
    """The libstdc++ shared library that this process (torch) has loaded, as a link input
    by its path. A compiler wrapper that links libstdc++ statically (-static-libstdc++
    with a folder holding only libstdc++.a, which -lstdc++ finds too; some CUDA images
    set CXX to one) gives the extension a private, uninitialised copy of the iostreams:
    formatting a number in an error message then crashes the process."""
    try:
        with open("/proc/self/maps") as maps:
            paths = [line.split()[-1] for line in maps if "/libstdc++.so" in line]
    except OSError:  # not Linux
        return []
    return paths[:1]


def _extension(with_cuda):
    # Each folder's CUDA code sits in its cuda/ subfolder, built only with CUDA.
    folders = ["csrc", "csrc/cpu", "csrc/meta", "csrc/persistent", "csrc/replay", "csrc/gemm"]
    sources = sorted(f for folder in folders for f in glob.glob(f"{folder}/*.cpp"))
    # No trapping/errno semantics (as torch itself builds) lets the gate loops vectorize;
    # results are unchanged (no reassociation).
    cxx_flags = ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"]
    link_flags = ["-fopenmp"] + _shared_libstdcxx()
    if not with_cuda:
        return CppExtension(
            "gru_cuda._C", sources, extra_compile_args={"cxx": cxx_flags},
            extra_link_args=link_flags)
    sources += sorted(f for folder in folders for pattern in ("*.cpp", "*.cu")
                      for f in glob.glob(f"{folder}/cuda/{pattern}"))
    return CUDAExtension(
        "gru_cuda._C", sources,
        include_dirs=_cublas_include_dirs(),
        # -Xptxas=-v: the build log records registers, shared memory and spills per kernel.
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo", "-Xptxas=-v"]},
        extra_link_args=link_flags)


blocker = "GRU_CUDA_FORCE_CPU=1" if FORCE_CPU else _cuda_blocker()
if FORCE_CUDA and blocker:
    sys.exit(f"gru_cuda: GRU_CUDA_FORCE_CUDA=1 but the CUDA kernels cannot be built: {blocker}")
WITH_CUDA = blocker is None
if WITH_CUDA and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
    # torch's build fails when it has no GPU to read the arch from: A100 and
    # H100/H200, with PTX for newer cards.
    os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"
print(f"gru_cuda: building the {'CPU + CUDA' if WITH_CUDA else 'CPU-only'} extension"
      + (f" (CUDA skipped: {blocker})" if blocker else "")
      + (f", TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}" if WITH_CUDA else ""),
      flush=True)

# What the build found, for gru_cuda._build_info and the tests.
with open(os.path.join(HERE, "gru_cuda", "_build_info.py"), "w") as f:
    f.write("# Written by setup.py at build time.\n")
    f.write(f"WITH_CUDA = {WITH_CUDA}\n")
    f.write(f"CUDA_SKIPPED_BECAUSE = {blocker!r}\n")
    f.write(f"TORCH_VERSION = {torch.__version__!r}\n")

setup(
    ext_modules=[_extension(WITH_CUDA)],
    cmdclass={"build_ext": BuildExtension},
)
