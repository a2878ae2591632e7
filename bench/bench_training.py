"""Training-step throughput: EA-LSTM (fused, masked) vs torch.nn.LSTM with statics concatenated.

Same shapes for both (DESIGN.md / issue 4): batch 256, 365 steps, 128 hidden, 4 dynamic and
10 static inputs; one step = forward + masked MSE on the last ``--supervised`` days +
backward + Adam. Also prints supervised days per second of xsomo's window design
(``lookback`` warm-up + ``seq_length`` supervised days per window).

Run::

    .venv/bin/python bench/bench_training.py            # full shapes
    .venv/bin/python bench/bench_training.py --quick    # small shapes, seconds
    python bench/bench_training.py --device cuda        # on a GPU (cuDNN for both models)
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from xsomo.model import EALSTM


class ConcatLSTM(nn.Module):
    """The baseline: nn.LSTM over [dynamic, static repeated at every step] + dense head."""

    def __init__(self, d: int, s: int, h: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d + s, h, batch_first=True)
        self.head = nn.Linear(h, 1)
        self.drop = nn.Dropout(0.4)

    def forward(self, x_d: torch.Tensor, x_s: torch.Tensor) -> tuple[torch.Tensor, None]:
        x = torch.cat([x_d, x_s[:, None].expand(-1, x_d.shape[1], -1)], -1)
        out, _ = self.lstm(x)
        return self.head(self.drop(out)), None


def _time_steps(model: nn.Module, x_d: torch.Tensor, x_s: torch.Tensor, y: torch.Tensor, sup: int, reps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        out, _ = model(x_d, x_s)
        loss = ((out[:, -sup:, 0] - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def sync() -> None:
        if x_d.is_cuda:
            torch.cuda.synchronize()

    step()  # warm-up
    sync()
    times = []
    for _ in range(reps):
        t0 = CLOCK()
        step()
        sync()
        times.append(CLOCK() - t0)
    return min(times)


#: wall clock by default; ``--cpu-time`` uses this process's CPU time (fair on a shared machine
#: with ``--threads 1``, where other processes' load would otherwise dominate the wall time)
CLOCK = time.perf_counter


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=365)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--lookback", type=int, default=365)
    p.add_argument("--seq-length", type=int, default=365)
    p.add_argument("--quick", action="store_true", help="batch 64, 120 steps, 64 hidden")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--cpu-time", action="store_true", help="time with process CPU time (use with --threads 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    if args.quick:
        args.batch, args.steps, args.hidden, args.lookback, args.seq_length = 64, 120, 64, 90, 30
    d, s = 4, 10
    torch.manual_seed(0)
    clock = "process CPU time" if args.cpu_time else "wall time"
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {name}, {clock}")
    x_d = torch.randn(args.batch, args.steps, d, device=dev)
    x_s = torch.randn(args.batch, s, device=dev)
    y = torch.randn(args.batch, args.steps, device=dev)
    ea = EALSTM(d, s, args.hidden).to(dev)
    base = ConcatLSTM(d, s, args.hidden).to(dev)
    # interleave to share the machine's load fairly
    t_ea = min(_time_steps(ea, x_d, x_s, y, args.steps, args.reps) for _ in range(2))
    t_base = min(_time_steps(base, x_d, x_s, y, args.steps, args.reps) for _ in range(2))
    print(f"training step, batch {args.batch} x {args.steps} steps, hidden {args.hidden}:")
    print(f"  EA-LSTM (fused, masked)        {t_ea * 1e3:9.1f} ms/step")
    print(f"  nn.LSTM + statics concatenated {t_base * 1e3:9.1f} ms/step")
    print(f"  speed-up EA-LSTM vs nn.LSTM    {t_base / t_ea:9.2f} x   (goal >= 1.0)")
    total = args.lookback + args.seq_length
    xw = torch.randn(args.batch, total, d, device=dev)
    yw = torch.randn(args.batch, args.seq_length, device=dev)
    t_w = _time_steps(ea, xw, x_s, yw, args.seq_length, args.reps)
    print(
        f"window design: {args.lookback} warm-up + {args.seq_length} supervised days, batch {args.batch}: "
        f"{t_w * 1e3:.0f} ms/step, {args.batch * args.seq_length / t_w:,.0f} supervised days/s"
    )


if __name__ == "__main__":
    main()
