"""What TF32 does to float32 inference on a GPU: the published SoMo.ml v1 model, all 36 525 windows.

PyTorch lets cuDNN's LSTM use TF32 tensor cores (10-bit mantissa) by default on Ampere and
newer GPUs; :func:`xsomo.model.rollout.full_float32` switches that off inside every inference
kernel. This prints, for windowed float32 inference on the GPU, the largest difference from
the published output (``somo_out.csv``, m3 m-3), the number of cell-days off by more than
1e-5, and the wall time, with TF32 as xsomo runs it (off) and as PyTorch's default would
(on). Needs CUDA and ../shared/data/real/somo-ml-v1 (or ``XSOMO_REAL_DATA``).

Run::

    python bench/bench_tf32.py
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import time

import numpy as np
import torch

from xsomo.io import somoml
from xsomo.model import rollout
from xsomo.model.importers import load_somoml_v1

HERE = pathlib.Path(__file__).resolve().parent
REAL = pathlib.Path(os.environ.get("XSOMO_REAL_DATA", HERE.parent.parent / "shared" / "data" / "real"))


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    folder = REAL / "somo-ml-v1"
    if not folder.is_dir():
        print(f"{folder} not found: set XSOMO_REAL_DATA")
        return 0
    run = somoml.open_somoml_v1_run(folder)
    model = load_somoml_v1(run.folder)
    dyn = run.dynamic_array(model.config.dynamic)
    sta = run.static_array(model.config.static)
    i0 = int(np.searchsorted(run.forcing["time"].values, run.output["time"].values[0]))
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()}")
    print(f"{'TF32':<28} {'max |diff|':>11} {'> 1e-5':>8} {'wall s':>8}")
    original = rollout.full_float32
    for label, tf32 in (("off (xsomo)", False), ("on (PyTorch's cuDNN default)", True)):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        rollout.full_float32 = original if not tf32 else (lambda device: contextlib.nullcontext())  # type: ignore[assignment]
        try:
            rollout.predict_block(model, dyn[:, :400], sta, mode="windowed", device="cuda")  # warm-up
            t0 = time.perf_counter()
            out = rollout.predict_block(model, dyn, sta, mode="windowed", device="cuda")
            wall = time.perf_counter() - t0
        finally:
            rollout.full_float32 = original
        diff = np.abs(out[0, 0, :, i0:] - run.output.values)
        print(f"{label:<28} {diff.max():11.2e} {int((diff > 1e-5).sum()):8d} {wall:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
