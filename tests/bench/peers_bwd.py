#!/usr/bin/env python3
"""Forward + backward peers for step 07: PyTorch SDPA (EFFICIENT_ATTENTION and
MATH backends), fp32, TF32 off, B = 1, Hq = 32, on the shapes of step 07's
benchmark (N = 1024, 4096, 16384; D = 64, 128; causal off and on).

Prints one CSV line per point (backend, N, D, causal, ms of forward+backward,
TFLOP/s by the FlashAttention convention: forward 4·B·H·N²·D (halved when
causal), backward 2.5× that, so forward+backward 3.5×). Runs only where
PyTorch with CUDA is importable; prints a skip line and exits 0 otherwise.

    python3 tests/bench/peers_bwd.py [--seqs 1024,4096,16384] > peers_bwd.csv
"""
import argparse
import sys

try:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
except Exception as e:  # noqa: BLE001 - any import failure means "no peer here"
    print(f"skipped: PyTorch not importable ({e})")
    sys.exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqs", default="1024,4096,16384")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print("backend,N,D,causal,ms_fwd_bwd,tflops_fwd_bwd,status")
    for n in [int(x) for x in a.seqs.split(",")]:
        for d in [int(x) for x in a.dims.split(",")]:
            for causal in (0, 1):
                for name, be in (("sdpa_efficient", SDPBackend.EFFICIENT_ATTENTION),
                                 ("sdpa_math", SDPBackend.MATH)):
                    g = torch.Generator(device="cuda").manual_seed(1)
                    try:
                        q, k, v = (torch.randn(1, 32, n, d, device="cuda", generator=g,
                                               requires_grad=True) for _ in range(3))
                        do = torch.randn(1, 32, n, d, device="cuda", generator=g)
                        times = []
                        with sdpa_kernel(be):
                            for it in range(3 + a.iters):
                                s, e = torch.cuda.Event(True), torch.cuda.Event(True)
                                s.record()
                                o = F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                                o.backward(do)
                                e.record()
                                torch.cuda.synchronize()
                                q.grad = k.grad = v.grad = None
                                if it >= 3:
                                    times.append(s.elapsed_time(e))
                        times.sort()
                        ms = times[len(times) // 2]
                        fl = 3.5 * 4 * 32 * n * n * d / (2 if causal else 1)
                        print(f"{name},{n},{d},{causal},{ms:.4f},{fl / ms / 1e9:.2f},ok", flush=True)
                    except torch.cuda.OutOfMemoryError:
                        print(f"{name},{n},{d},{causal},,,oom", flush=True)
                    finally:
                        q = k = v = do = o = None
                        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
