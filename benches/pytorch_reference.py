"""PyTorch reference for `raceloop bench infer --pytorch PY` and `raceloop bench train --pytorch PY`.

The same Tiny Lidar Net as crates/learn/src/model.rs (Zarrar et al., arXiv:2410.07447): five
valid-padding Conv1d layers (24, 36, 48, 64, 64 channels; kernels 10, 8, 4, 3, 3; strides 4, 4,
2, 1, 1) with ReLU, dense 100, 50, 10 with ReLU, a tanh head; input [batch, 1, 1080].

    python pytorch_reference.py infer --calls 5000 --threads 1 --outputs 2
    python pytorch_reference.py train --samples 32000 --epochs 4 --threads 2 --outputs 1

`infer`: batch-1 latency in µs (median, mean, p99) under `torch.inference_mode`.
`train`: samples/s at batch 64 with MSE and AdamW (lr 1e-3, weight decay 0.01, the optimizer
step included), the median over the epochs after the first (a warm-up), for the default
(foreach) and the fused AdamW.
Prints one JSON object with torch's version, its CPU capability (`ATEN_CPU_CAPABILITY=avx2`
forces AVX2) and the thread count.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def tiny_lidar_net(beams: int = 1080, outputs: int = 2) -> nn.Module:
    layers, channels, length = [], 1, beams
    for out, kernel, stride in [(24, 10, 4), (36, 8, 4), (48, 4, 2), (64, 3, 1), (64, 3, 1)]:
        layers += [nn.Conv1d(channels, out, kernel, stride=stride), nn.ReLU()]
        channels, length = out, (length - kernel) // stride + 1
    layers.append(nn.Flatten())
    width = channels * length
    for units in [100, 50, 10]:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers += [nn.Linear(width, outputs), nn.Tanh()]
    return nn.Sequential(*layers)


def infer(calls: int, outputs: int) -> dict:
    model = tiny_lidar_net(outputs=outputs).eval()
    scan = torch.rand(1, 1, 1080)
    times = []
    with torch.inference_mode():
        for _ in range(200):
            model(scan)
        for _ in range(calls):
            t = time.perf_counter()
            model(scan)
            times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return {
        "median_us": statistics.median(times),
        "mean_us": statistics.fmean(times),
        "p99_us": times[int(0.99 * (len(times) - 1))],
        "calls": calls,
    }


def train(samples: int, epochs: int, fused: bool, outputs: int) -> dict:
    torch.manual_seed(0)
    model = tiny_lidar_net(outputs=outputs)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, fused=fused or None)
    x = torch.rand(samples, 1, 1080)
    y = torch.rand(samples, outputs) * 2 - 1
    loss_fn = nn.MSELoss()
    rates = []
    for _ in range(epochs):
        t = time.perf_counter()
        for i in range(0, samples - 63, 64):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[i : i + 64]), y[i : i + 64])
            loss.backward()
            opt.step()
        rates.append((samples // 64) * 64 / (time.perf_counter() - t))
    return {
        "samples_per_s": statistics.median(rates[1:]) if len(rates) > 1 else rates[0],
        "epochs": rates,
        "parameters": params,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["infer", "train"])
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--samples", type=int, default=32000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--outputs", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }
    if a.what == "infer":
        out["infer"] = infer(a.calls, a.outputs)
    else:
        out["train"] = train(a.samples, a.epochs, False, a.outputs)
        out["train_fused"] = train(a.samples, a.epochs, True, a.outputs)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
