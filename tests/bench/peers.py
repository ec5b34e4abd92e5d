#!/usr/bin/env python3
"""PyTorch peers for the benchmark: scaled_dot_product_attention on the shapes of build/bin/bench's two sweeps.

Times torch.nn.functional.scaled_dot_product_attention, one backend at a
time (torch.nn.attention.sdpa_kernel), on the shapes of the two sweeps of
build/bin/bench (tests/bench/bench.cu), N in {512 .. 16384}, D in
{64, 128}, causal off and on:

- fp32 sweep (`sweep` column fp32): EFFICIENT_ATTENTION and MATH, fp32,
  B = 1, Hq = 32. TF32 is switched off (torch.backends.cuda.matmul.
  allow_tf32 = False, float32 matmul precision "highest"): the MATH backend
  is then the same cuBLAS fp32 SGEMM + softmax + SGEMM as our step 04.
- tc sweep (`sweep` column tc): FLASH_ATTENTION (FlashAttention-2),
  CUDNN_ATTENTION and EFFICIENT_ATTENTION, fp16 at every N and bf16 at the
  N of --bf16-seqs (default 4096), B = 16384 / N (--tc-tokens), Hq = 32:
  the peers of the tensor-core steps.

Q, K, V are contiguous [B, Hq, N, D] (BHSD, as our steps take them),
standard normals of the type. Each point is timed with CUDA events: one
untimed call (which also measures extra_bytes), warm-up, then the median of
up to --iters runs capped at about --max-ms, the L2 flushed before each
timed run (a write of twice its size, as build/bin/bench does). TFLOP/s by
the FlashAttention convention, 4·B·Hq·N²·D, halved when causal.
extra_bytes is the peak of torch's allocator during the untimed call,
minus Q, K, V and O.

A backend that raises on a point leaves a row saying so and the run goes
on: in the fp32 sweep a RuntimeError is `refused` (the backend does not
take the shape or type) as before; in the tc sweep any exception is
`error`, the note the exception's first line and the first warning SDPA
gave with it (the reason a backend was not usable). Out of memory is `oom`,
and the larger N of that (backend, type, D, causal) are not tried.

Writes OUT/peers.csv with sweep.py's columns (step = sdpa_flash,
sdpa_cudnn, sdpa_efficient or sdpa_math; dtype fp32, fp16 or bf16; sweep
fp32 or tc), a row at a time, so a run cut short keeps what it measured;
sweep.py shows them beside the steps, as ratios measured in the same run.

Runs only where `import torch` works and a CUDA device is present;
elsewhere it prints one `skipped:` line, writes nothing and exits 0.

    python3 tests/bench/peers.py [--out build/bench] [--sweep fp32|tc|all] [--quick]
"""
import argparse
import csv
import os
import sys
import warnings

COLUMNS = ["step", "name", "device", "dtype", "B", "Hq", "Hkv", "Sq", "Sk", "D",
           "causal", "ms", "tflops", "extra_bytes", "runs", "status", "note", "sweep"]
SEQS = [512, 1024, 2048, 4096, 8192, 16384]
DIMS = [64, 128]
TC_TOKENS = 16384   # the tc sweep's B·N (build/bin/bench --tc-tokens)
TC_BF16_SEQ = 4096  # the N where the tc sweep also runs bf16 (--bf16-seqs)


def int_list(s):
    return [int(x) for x in s.split(",")]


def median(times):
    times = sorted(times)
    h = len(times) // 2
    return times[h] if len(times) % 2 else 0.5 * (times[h - 1] + times[h])


def first_line(x, limit=200):
    lines = str(x).strip().splitlines()
    return lines[0][:limit] if lines else type(x).__name__


def time_point(torch, run, args, flush):
    """(ms, runs, extra_bytes, out) of @run: an untimed call, warm-up, timed runs."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    o = run()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base - o.numel() * o.element_size()
    del o

    def timed():
        """ms of one call of @run, by CUDA events"""
        s0 = torch.cuda.Event(enable_timing=True)
        s1 = torch.cuda.Event(enable_timing=True)
        s0.record()
        run()
        s1.record()
        s1.synchronize()
        return s0.elapsed_time(s1)

    spent_w = 0.0
    for _ in range(args.warmup):
        spent_w += timed()
        if spent_w > args.max_ms:
            break
    times, spent = [], 0.0
    while len(times) < args.iters:
        flush.fill_(len(times) & 1)  # evict Q, K, V from L2
        t = timed()
        times.append(t)
        spent += t
        if spent >= args.max_ms:
            break
    return median(times), len(times), max(int(extra), 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--sweep", choices=("fp32", "tc", "all"), default="all",
                    help="which sweep's peers (default all: tc, then fp32)")
    ap.add_argument("--quick", action="store_true", help="N in {512, 2048}, D = 64, bf16 at 2048")
    ap.add_argument("--seqs", type=int_list)
    ap.add_argument("--dims", type=int_list)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1, help="fp32 sweep's B (default 1)")
    ap.add_argument("--tc-tokens", type=int, default=TC_TOKENS,
                    help="tc sweep: B = max(1, T / N) (default %d)" % TC_TOKENS)
    ap.add_argument("--bf16-seqs", default=None,
                    help="tc sweep: the N that also run bf16, a list, all or none "
                         "(default %d)" % TC_BF16_SEQ)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--max-ms", type=float, default=1000.0)
    args = ap.parse_args()

    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception as e:  # ImportError, or a broken install
        print("skipped: PyTorch not importable (%s)" % first_line(e, 100))
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
    if args.bf16_seqs is None:
        bf16_seqs = [2048] if args.quick else [TC_BF16_SEQ]
    elif args.bf16_seqs == "all":
        bf16_seqs = seqs
    elif args.bf16_seqs == "none":
        bf16_seqs = []
    else:
        bf16_seqs = int_list(args.bf16_seqs)
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

    # (sweep, step tag, backend, dtype name, the N it runs at, B at N)
    plan = []
    if args.sweep in ("tc", "all"):
        tc_batch = lambda n: max(1, args.tc_tokens // n)
        for tag, backend in (("sdpa_flash", SDPBackend.FLASH_ATTENTION),
                             ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION),
                             ("sdpa_efficient", SDPBackend.EFFICIENT_ATTENTION)):
            plan.append(("tc", tag, backend, "fp16", seqs, tc_batch))
            plan.append(("tc", tag, backend, "bf16", [n for n in seqs if n in bf16_seqs],
                         tc_batch))
    if args.sweep in ("fp32", "all"):
        for tag, backend in (("sdpa_efficient", SDPBackend.EFFICIENT_ATTENTION),
                             ("sdpa_math", SDPBackend.MATH)):
            plan.append(("fp32", tag, backend, "fp32", seqs, lambda n: args.batch))

    # L2 flush buffer (as common/gpu_host.cu does for small inputs).
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)
    flush = torch.empty(2 * l2, dtype=torch.uint8, device=dev)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "peers.csv")
    print("peers: %s, torch %s, CUDA %s, cuDNN %s; writing %s" % (
        torch.cuda.get_device_name(0), torch.__version__, torch.version.cuda,
        torch.backends.cudnn.version(), path), flush=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        f.flush()
        for sweep, tag, backend, dt, ns, batch in plan:
            for d in dims:
                for causal in (0, 1):
                    stop = None
                    for n in ns:
                        b = batch(n)
                        row = {c: "" for c in COLUMNS}
                        row.update(step=tag, name="torch_" + tag, device="gpu", dtype=dt,
                                   B=b, Hq=args.heads, Hkv=args.heads, Sq=n, Sk=n,
                                   D=d, causal=causal, sweep=sweep)
                        if stop:
                            row.update(status=stop[0], note=stop[1])
                        else:
                            measure(torch, F, sdpa_kernel, backend, dtypes[dt], row, args,
                                    flush, dev)
                            if row["status"] == "oom":
                                stop = ("oom", "after N=%d" % n)
                        w.writerow(row)
                        f.flush()
                        print("  %-15s %-4s %-4s B=%-2d D=%-3d causal=%d N=%-6d %s" % (
                            tag, sweep, dt, b, d, causal, n,
                            "%.3f ms %.2f TFLOP/s" % (float(row["ms"]), float(row["tflops"]))
                            if row["status"] == "ok" else row["status"] + " " + row["note"][:90]),
                            flush=True)
    print("wrote %s" % path)
    return 0


def measure(torch, F, sdpa_kernel, backend, dtype, row, args, flush, dev):
    """Time one point into @row (status ok, oom, refused or error; never raises
    for what the backend does)."""
    b, h, n, d, causal = row["B"], row["Hq"], row["Sq"], row["D"], row["causal"]
    flops = 4.0 * b * h * n * n * d * (0.5 if causal else 1.0)
    q = k = v = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                g = torch.Generator(device=dev).manual_seed(1)
                shape = (b, h, n, d)
                q = torch.randn(shape, device=dev, dtype=dtype, generator=g)
                k = torch.randn(shape, device=dev, dtype=dtype, generator=g)
                v = torch.randn(shape, device=dev, dtype=dtype, generator=g)
                with sdpa_kernel(backend):
                    run = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                    ms, runs, extra = time_point(torch, run, args, flush)
                row.update(ms="%.4f" % ms, tflops="%.4f" % (flops / (ms * 1e-3) * 1e-12),
                           extra_bytes=extra, runs=runs, status="ok")
            except torch.cuda.OutOfMemoryError as e:
                row.update(status="oom", note=first_line(e, 160))
            except Exception as e:  # the backend refuses the shape or type, or fails
                why = first_line(e, 160)
                said = [first_line(x.message, 160) for x in caught]
                if said:
                    why += " (%s)" % said[0]
                if row["sweep"] == "fp32" and isinstance(e, RuntimeError):
                    row.update(status="refused", note=why)  # as peers.py always said
                else:
                    row.update(status="error", note="%s: %s" % (type(e).__name__, why))
    finally:
        del q, k, v
        try:
            torch.cuda.empty_cache()
        except Exception:  # a broken context: the next point says so
            pass


if __name__ == "__main__":
    sys.exit(main())
