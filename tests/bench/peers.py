#!/usr/bin/env python3
"""PyTorch peers for the benchmark: scaled_dot_product_attention, fp32.

Times torch.nn.functional.scaled_dot_product_attention with the
EFFICIENT_ATTENTION and MATH backends (torch.nn.attention.sdpa_kernel) on
the sweep's shapes — B = 1, Hq = 32, N in {512 .. 16384}, D in {64, 128},
causal off and on, fp32 — with CUDA events: warm-up, then the median of up
to --iters runs capped at about --max-ms per point. Writes
build/bench/peers.csv with sweep.py's columns (step = sdpa_efficient or
sdpa_math), which sweep.py then shows as ratios.

TF32 is switched off (torch.backends.cuda.matmul.allow_tf32 = False,
float32 matmul precision "highest"): the MATH backend is then the same
cuBLAS fp32 SGEMM + softmax + SGEMM as our step 04. extra_bytes is the peak
of torch's allocator during the call, minus Q, K, V and O.

Runs only where `import torch` works and a CUDA device is present;
elsewhere it prints one `skipped:` line and exits 0.

    python3 tests/bench/peers.py [--out build/bench] [--quick]
"""
import argparse
import csv
import os
import sys

COLUMNS = ["step", "name", "device", "dtype", "B", "Hq", "Hkv", "Sq", "Sk", "D",
           "causal", "ms", "tflops", "extra_bytes", "runs", "status", "note"]
SEQS = [512, 1024, 2048, 4096, 8192, 16384]
DIMS = [64, 128]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--quick", action="store_true", help="N in {512, 2048}, D = 64")
    ap.add_argument("--seqs", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--dims", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--max-ms", type=float, default=1000.0)
    args = ap.parse_args()

    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception as e:  # ImportError, or a broken install
        print("skipped: PyTorch not importable (%s)" % str(e).splitlines()[0][:100])
        return 0
    if not torch.cuda.is_available():
        print("skipped: PyTorch sees no CUDA device")
        return 0

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    seqs = args.seqs or ([512, 2048] if args.quick else SEQS)
    dims = args.dims or ([64] if args.quick else DIMS)
    backends = [("sdpa_efficient", SDPBackend.EFFICIENT_ATTENTION),
                ("sdpa_math", SDPBackend.MATH)]
    # L2 flush buffer (as common/gpu_host.cu does for small inputs).
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)
    flush = torch.empty(2 * l2, dtype=torch.uint8, device=dev)

    rows = []
    name_dev = torch.cuda.get_device_name(0)
    print("peers: %s, torch %s" % (name_dev, torch.__version__))
    for tag, backend in backends:
        for d in dims:
            for causal in (0, 1):
                stop = None
                for n in seqs:
                    row = {c: "" for c in COLUMNS}
                    row.update(step=tag, name="torch_" + tag, device="gpu", dtype="fp32",
                               B=args.batch, Hq=args.heads, Hkv=args.heads, Sq=n, Sk=n,
                               D=d, causal=causal)
                    if stop:
                        row.update(status=stop[0], note=stop[1])
                        rows.append(row)
                        continue
                    flops = 4.0 * args.batch * args.heads * n * n * d * (0.5 if causal else 1.0)
                    try:
                        g = torch.Generator(device=dev).manual_seed(1)
                        shape = (args.batch, args.heads, n, d)
                        q = torch.randn(shape, device=dev, generator=g)
                        k = torch.randn(shape, device=dev, generator=g)
                        v = torch.randn(shape, device=dev, generator=g)
                        with sdpa_kernel(backend):
                            run = lambda: F.scaled_dot_product_attention(
                                q, k, v, is_causal=bool(causal))
                            torch.cuda.synchronize()
                            torch.cuda.reset_peak_memory_stats()
                            base = torch.cuda.memory_allocated()
                            o = run()
                            torch.cuda.synchronize()
                            extra = torch.cuda.max_memory_allocated() - base - o.numel() * 4
                            del o
                            spent_w = 0.0
                            for _ in range(args.warmup):
                                s0 = torch.cuda.Event(enable_timing=True)
                                s1 = torch.cuda.Event(enable_timing=True)
                                s0.record()
                                run()
                                s1.record()
                                s1.synchronize()
                                spent_w += s0.elapsed_time(s1)
                                if spent_w > args.max_ms:
                                    break
                            times, spent = [], 0.0
                            while len(times) < args.iters:
                                flush.fill_(len(times) & 1)  # evict Q, K, V from L2
                                s0 = torch.cuda.Event(enable_timing=True)
                                s1 = torch.cuda.Event(enable_timing=True)
                                s0.record()
                                run()
                                s1.record()
                                s1.synchronize()
                                t = s0.elapsed_time(s1)
                                times.append(t)
                                spent += t
                                if spent >= args.max_ms:
                                    break
                        times.sort()
                        ms = times[len(times) // 2] if len(times) % 2 else \
                            0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
                        row.update(ms="%.4f" % ms, tflops="%.4f" % (flops / (ms * 1e-3) * 1e-12),
                                   extra_bytes=max(int(extra), 0), runs=len(times), status="ok")
                        del q, k, v
                    except torch.cuda.OutOfMemoryError as e:
                        row.update(status="oom", note=str(e).splitlines()[0][:160])
                        stop = ("oom", "after N=%d" % n)
                    except RuntimeError as e:  # backend refuses the shape/dtype
                        row.update(status="refused", note=str(e).splitlines()[0][:160])
                    finally:
                        torch.cuda.empty_cache()
                    rows.append(row)
                    print("  %-15s D=%-3d causal=%d N=%-6d %s" % (
                        tag, d, causal, n,
                        "%.3f ms %.2f TFLOP/s" % (float(row["ms"]), float(row["tflops"]))
                        if row["status"] == "ok" else row["status"] + " " + row["note"][:80]),
                        flush=True)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "peers.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
