#!/usr/bin/env python3
"""The benchmark sweep's tables, and its CPU half (notes/design.md, "Benchmark and timing").

`make bench` times the GPU steps with build/bin/bench (tests/bench/bench.cu):
one process, inputs drawn on the device, buffers allocated once, repeats
interleaved across the steps, two sweeps: fp32 (steps 04, 05, 06 forward,
07 backward; B = 1, Hq = 32) and tc (the steps that take fp16/bf16 in fp16,
and bf16 at N = 4096, with step 04 fp16/bf16 and step 06 fp32 beside them;
B = 16384 / N, Hq = 32). That writes build/bench/results.csv, and
tests/bench/peers.py writes build/bench/peers.csv (PyTorch SDPA on the same
shapes). Then this script runs with --merge: it runs only the step
programs whose rows that file does not hold yet (the CPU steps 01-03; or
every step, where build/bin/bench found no GPU and wrote nothing), adds
their rows to the file, and prints the tables. --print only prints the
tables of a results.csv (and of OUT/peers.csv or --peers).

Without --merge it sweeps every step program present under build/bin (or
those named by --steps) itself, one subprocess a point, as `make bench` did
before build/bin/bench: `PROG --bench --no-check` over N in {512 .. 16384},
D in {64, 128}, causal off and on, fp32 (--dtype), B = 1, Hq = 32, parsing
the `result:` line: the fp32 sweep only. (A GPU point run that way draws
its inputs on the host first; a full GPU sweep so takes several times
longer than build/bin/bench.)

Either way it writes build/bench/results.csv and prints Markdown tables:
- the fp32 sweep's, the FlashAttention write-ups' (time, TFLOP/s, extra
  memory by N, speed-up over standard attention) and, where peers.csv has
  fp32 rows, the ratio of each step to each peer in the same run;
- the tc sweep's (print_tc_tables()): per D and causal, a line per N, the
  TFLOP/s of each 16-bit step, step 04 in fp16, step 06 in fp32 and the SDPA
  peers in fp16 (flash, cuDNN, efficient), each step's ratio to SDPA
  FLASH_ATTENTION of the same run, and each tensor-core step's fraction of
  the mma.sync ceiling (MMA_SYNC_F16_TFLOPS, an H200 figure); a bf16 table
  where bf16 was measured; why each point not measured was not.

The CSV contract, which build/bin/bench and peers.py keep too: the columns
of COLUMNS, one row per (sweep, step, dtype, D, causal, N), in that order;
status ok, oom (the workspace does not fit: the note says how much it
needs), refused (the step does not take the shape), skipped (a run
estimated too long), timeout, error or no-device, the note saying why; ms
the median of the timed runs, tflops by the FlashAttention FLOP convention
(forward: 4·B·Hq·Sq·Sk·D, halved when causal; step 07's rows time its
backward alone and count 2.5 times the forward's FLOPs), extra_bytes the
step's workspace; sweep fp32 or tc (a file without that column, written
before it existed, is all fp32).

Slow steps are cut short: a point whose one run, estimated from the previous
N by the N^2 law, would take longer than --cpu-limit-s (CPU steps) or
--gpu-limit-s (GPU steps), 10 s each by default, is skipped, and so are the
larger N after it. A GPU point that runs out of memory (exit 3, step 04 at
large N) is recorded as `oom` with the step's message, and larger N are not
tried. Python 3 standard library only.

    build/bin/bench && python3 tests/bench/sweep.py --merge   # `make bench`
    python3 tests/bench/sweep.py                  # every program, a subprocess a point
    python3 tests/bench/sweep.py --steps 04,06 --quick
    python3 tests/bench/sweep.py --print build/bench/results.csv   # tables only
"""
import argparse
import csv
import glob
import os
import shutil
import subprocess
import sys
import time

COLUMNS = ["step", "name", "device", "dtype", "B", "Hq", "Hkv", "Sq", "Sk", "D",
           "causal", "ms", "tflops", "extra_bytes", "runs", "status", "note", "sweep"]
SEQS = [512, 1024, 2048, 4096, 8192, 16384]
DIMS = [64, 128]
QUICK_SEQS = [512, 2048]
QUICK_DIMS = [64]
# Steps the forward sweep leaves out unless --steps names them: 07 times a
# backward pass; its FLOPs are not this table's.
NOT_FORWARD = {"07"}
# The ceiling the "of 648" column divides by: mma.sync.aligned.m16n8k16
# fp16 x fp16 -> fp32, ~648 TFLOP/s, measured with a microbenchmark (a
# stream of independent HMMA per warp, nothing else) on the NVIDIA H200 of
# notes/08_tc_mma.md (132 SMs at 1.98 GHz: one 4096-FLOP HMMA per warp about
# every 1.65 SM cycles). Device-specific: another GPU, or another clock, has
# another ceiling; and not the Hopper wgmma ceiling cuBLAS reaches.
MMA_SYNC_F16_TFLOPS = 648.0
# The standard-attention step: the baseline of the speed-ups, and in the tc
# tables the "standard attention in fp16" column.
BASE_STEP = "04"
# Labels of the PyTorch SDPA peers (peers.py's step column).
PEER_LABELS = {"sdpa_flash": "SDPA flash", "sdpa_cudnn": "SDPA cuDNN",
               "sdpa_efficient": "SDPA efficient", "sdpa_math": "SDPA math"}


def parse_result(stdout):
    """The key=value pairs of the last `result:` line, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("result:"):
            out = {}
            for tok in line[len("result:"):].split():
                if "=" in tok:
                    key, val = tok.split("=", 1)
                    out[key] = val
            return out
    return None


def find_steps(bin_dir, wanted, skip=()):
    """[(id, name, path)] of the step programs present, in step order, less
    the ids in @skip (those --merge found measured already)."""
    found = []
    for path in sorted(glob.glob(os.path.join(bin_dir, "[0-9][0-9]_*"))):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        base = os.path.basename(path)
        sid, name = base[:2], base[3:]
        if sid in skip:
            continue
        if wanted is not None:
            if sid not in wanted:
                continue
        elif sid in NOT_FORWARD:
            continue
        found.append((sid, name, path))
    return found


def run_point(path, args, n, d, causal, device_hint, timeout):
    """Run one point; returns a CSV row dict (status ok/oom/refused/error/timeout)."""
    cpu = device_hint == "cpu"
    cmd = [path, "--batch", str(args.batch), "--heads", str(args.heads),
           "--seq", str(n), "--dim", str(d), "--causal=%d" % causal,
           "--seed", "1", "--bench", "--no-check",
           "--warmup", "0" if cpu else str(args.warmup),
           "--iters", "3" if cpu else str(args.iters)]
    if args.dtype != "fp32":
        cmd += ["--dtype", args.dtype]
    row = {c: "" for c in COLUMNS}
    row.update({"B": args.batch, "Hq": args.heads, "Hkv": args.heads, "Sq": n,
                "Sk": n, "D": d, "causal": causal, "dtype": args.dtype})
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        row.update(status="timeout", note="over %d s" % timeout)
        return row
    err = " ".join(proc.stderr.strip().splitlines()[-1:])
    if proc.returncode == 3:
        row.update(status="no-device" if "no CUDA device" in err else "oom", note=err)
        return row
    if proc.returncode == 2:
        row.update(status="refused", note=err)
        return row
    res = parse_result(proc.stdout)
    if proc.returncode != 0 or res is None:
        row.update(status="error", note="exit %d: %s" % (proc.returncode, err))
        return row
    for key in ("device", "dtype", "B", "Hq", "Hkv", "Sq", "Sk", "D", "causal",
                "ms", "tflops", "extra_bytes", "runs"):
        if key in res:
            row[key] = res[key]
    row["status"] = "ok"
    return row


def sweep(args, skip=()):
    """Run every step program found (less the ids in @skip) over the shapes;
    the rows, or [] when there is nothing to run."""
    wanted = set(s.strip() for s in args.steps.split(",")) if args.steps else None
    steps = find_steps(args.bin, wanted, skip)
    if not steps:
        if not skip:
            print("sweep: no step programs under %s (run `make` first)" % args.bin)
        return []
    seqs = args.seqs or (QUICK_SEQS if args.quick else SEQS)
    dims = args.dims or (QUICK_DIMS if args.quick else DIMS)
    rows = []
    t_start = time.time()
    limit = lambda device: args.cpu_limit_s if device == "cpu" else args.gpu_limit_s
    for sid, name, path in steps:
        device = None  # learned from the first result line
        no_device = None  # the step's note once it found no CUDA device: one line, not one per point
        for d in dims:
            for causal in (0, 1):
                prev = None  # (n, ms) of the last point that ran
                stop = None  # status for every larger N once one failed
                for n in seqs:
                    if no_device is not None and stop is None:
                        stop = ("no-device", no_device)
                    if stop is not None:
                        row = {c: "" for c in COLUMNS}
                        row.update({"B": args.batch, "Hq": args.heads, "Hkv": args.heads,
                                    "Sq": n, "Sk": n, "D": d, "causal": causal,
                                    "dtype": args.dtype, "device": device or "",
                                    "status": stop[0], "note": stop[1]})
                    elif prev and prev[1] * (n / prev[0]) ** 2 > limit(device) * 1e3:
                        # one run's time grows as N^2: estimate it from the last point
                        est = prev[1] * (n / prev[0]) ** 2 / 1e3
                        stop = ("skipped", "a run estimated over %g s" % limit(device))
                        row = {c: "" for c in COLUMNS}
                        row.update({"B": args.batch, "Hq": args.heads, "Hkv": args.heads,
                                    "Sq": n, "Sk": n, "D": d, "causal": causal,
                                    "dtype": args.dtype, "device": device,
                                    "status": "skipped",
                                    "note": "one run estimated at %.1f s > %g s" % (est, limit(device))})
                    else:
                        row = run_point(path, args, n, d, causal, device, args.timeout)
                        if row["status"] == "ok":
                            device = row["device"]
                            prev = (n, float(row["ms"]))
                        elif row["status"] in ("oom", "timeout", "refused", "no-device"):
                            stop = (row["status"], "after N=%d: %s" % (n, row["note"]))
                        if row["status"] == "no-device" and no_device is None:
                            no_device = row["note"]
                            if not args.quiet:
                                print("  %s %-22s no CUDA device: every point skipped (%s)" % (
                                    sid, name, row["note"][:70]), flush=True)
                    row["step"], row["name"], row["sweep"] = sid, name, "fp32"
                    rows.append(row)
                    if row["status"] == "no-device":
                        continue  # said once above
                    if not args.quiet:
                        print("  %s %-22s D=%-3d causal=%d N=%-6d %-8s %s" % (
                            sid, name, d, causal, n, row["status"],
                            ("%s ms %s TFLOP/s" % (num(row["ms"]), num(row["tflops"])))
                            if row["status"] == "ok" else row["note"][:90]),
                            flush=True)
    print("sweep: %d points in %.0f s" % (len(rows), time.time() - t_start))
    return rows


def write_csv(path, rows):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def merge_rows(kept, new):
    """@kept and @new as one table: the fp32 sweep's rows, then the tc
    sweep's, each in step order (a stable sort by step id: within a step,
    the order each was written in: type, D, causal, N)."""
    return sorted(kept + new, key=lambda r: (sweep_of(r) == "tc", r["step"]))


def sweep_of(r):
    """The sweep a row belongs to: its `sweep` column; "fp32" in a file
    written before that column existed (then every row was the fp32 sweep's)."""
    return r.get("sweep") or "fp32"


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["sweep"] = sweep_of(r)
    return rows


def fmt_bytes(b):
    b = float(b)
    if b == 0:
        return "0"
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if b >= scale:
            return "%.3g %s" % (b / scale, unit)
    return "%d B" % b


def num(x):
    """Three significant figures, without scientific notation for the usual range."""
    x = float(x)
    if x == 0 or abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 0.01:
        return "%.3g" % x
    return "%.2e" % x


def print_tables(rows, peers, out=sys.stdout):
    """Every table: the fp32 sweep's (print_fp32_tables()), then the tc
    sweep's (print_tc_tables())."""
    fp32 = [r for r in rows if sweep_of(r) == "fp32"]
    if fp32:
        print_fp32_tables(fp32, [r for r in peers if sweep_of(r) == "fp32"], out)
    print_tc_tables([r for r in rows if sweep_of(r) == "tc"],
                    [r for r in peers if sweep_of(r) == "tc"], out)


def print_fp32_tables(rows, peers, out=sys.stdout):
    """The fp32 sweep's Markdown tables by (D, causal): rows are steps (and
    peers), columns N."""
    ok = lambda r: r.get("status") == "ok"
    steps = []
    for r in rows:
        key = (r["step"], r["name"])
        if key not in steps:
            steps.append(key)
    ids = [s for s, _ in steps]
    # the speed-up and peer tables compare forwards: step 07's rows time a
    # backward (build/bin/bench; 2.5 x the forward's FLOPs), and stay out of them
    fwd_ids = [s for s in ids if s not in NOT_FORWARD]
    bwd_ids = [s for s in ids if s in NOT_FORWARD]
    # the speed-ups are over standard attention: step 04 on the GPU, or step
    # 01 where step 04 has no measured point (no GPU, or it did not run)
    ran = {r["step"] for r in rows if ok(r)}
    base = next((b for b in (BASE_STEP, "01") if b in fwd_ids and b in ran),
                fwd_ids[0] if fwd_ids else None)
    peer_names = []
    for r in peers:
        if r["step"] not in peer_names:
            peer_names.append(r["step"])
    blocks = sorted({(int(r["D"]), int(r["causal"])) for r in rows})
    seqs = sorted({int(r["Sq"]) for r in rows})

    def cell(table, sid, n, d, c):
        for r in table:
            if r["step"] == sid and int(r["Sq"]) == n and int(r["D"]) == d \
                    and int(r["causal"]) == c:
                return r
        return None

    def status_text(r):
        if r is None:
            return ""
        return {"oom": "OOM", "skipped": "—", "refused": "n/a",
                "timeout": "timeout"}.get(r["status"], r["status"])

    def table(title, label, items, value):
        print("\n%s\n" % title, file=out)
        print("| %s | %s |" % (label, " | ".join("N=%d" % n for n in seqs)), file=out)
        print("|---|%s" % ("---:|" * len(seqs)), file=out)
        for sid, nm, src in items:
            cells = []
            for n in seqs:
                r = cell(src, sid, n, d, c)
                cells.append(value(sid, n, r) if r is not None and ok(r) else status_text(r))
            print("| %s | %s |" % (nm, " | ".join(cells)), file=out)

    for d, c in blocks:
        head = rows[0]
        print("\n### D = %d, %s (%s, B = %s, Hq = %s)" % (
            d, "causal" if c else "not causal", head["dtype"] or "fp32", head["B"],
            head["Hq"]), file=out)
        mine = [(s, "%s %s" % (s, n), rows) for s, n in steps]
        theirs = [(p, "PyTorch " + p, peers) for p in peer_names]
        bwd_note = ("; %s: the backward alone" % ", ".join(bwd_ids)) if bwd_ids else ""
        table("Time (ms, median%s)" % bwd_note, "step", mine + theirs,
              lambda s, n, r: num(r["ms"]))
        table("TFLOP/s (forward, FlashAttention FLOP convention)" if not bwd_ids else
              "TFLOP/s (FlashAttention FLOP convention; %s: the backward alone, counted as "
              "2.5 × the forward's FLOPs)" % ", ".join(bwd_ids),
              "step", mine + theirs, lambda s, n, r: num(r["tflops"]))
        table("Extra memory (beyond inputs and output)", "step", mine + theirs,
              lambda s, n, r: fmt_bytes(r["extra_bytes"]) if r["extra_bytes"] != "" else "")
        if base is not None:
            def speedup(s, n, r):
                b = cell(rows, base, n, d, c)
                if b is None or not ok(b):
                    return "(%s: %s)" % (base, status_text(b) or "none")
                return num(float(b["ms"]) / float(r["ms"])) + "×"
            table("Speedup over step %s (its time / this time)" % base, "step",
                  [m for m in mine if m[0] in fwd_ids], speedup)
        # Peers are GPU forward kernels: compare the GPU forward steps with them.
        gpu_ids = {r["step"] for r in rows
                   if r.get("device") == "gpu" and r["step"] in fwd_ids}
        mine_gpu = [m for m in mine if m[0] in gpu_ids]
        for p in peer_names:
            def ratio(s, n, r, p=p):
                pr = cell(peers, p, n, d, c)
                if pr is None or not ok(pr):
                    return "(%s)" % (status_text(pr) or "none")
                return num(float(pr["ms"]) / float(r["ms"])) + "×"
            table("Ratio to PyTorch %s (its time / this time; > 1: faster)" % p,
                  "step", mine_gpu, ratio)


def _ok(r):
    return r is not None and r.get("status") == "ok"


def _mark(r):
    """A cell for a point not measured: its status, short."""
    if r is None:
        return ""
    return {"oom": "OOM", "skipped": "—", "refused": "n/a",
            "timeout": "timeout"}.get(r["status"], r["status"])


def _tflops(r):
    return num(r["tflops"]) if _ok(r) else _mark(r)


def _ratio(a, b):
    """a's TFLOP/s over b's at one shape (b's time / a's time), "0.52×"."""
    if not _ok(a) or not _ok(b) or float(a["ms"]) <= 0:
        return ""
    return "%.2f×" % (float(b["ms"]) / float(a["ms"]))


def _ordered(src, dtype):
    """The step ids of @src's rows of type @dtype, in the order they come."""
    ids = []
    for r in src:
        if r["dtype"] == dtype and r["step"] not in ids:
            ids.append(r["step"])
    return ids


def _peer_label(p):
    return PEER_LABELS.get(p, p)


FLASH = "sdpa_flash"


def print_tc_tables(rows, peers, out=sys.stdout):
    """The tc sweep's Markdown tables (build/bin/bench's rows of sweep "tc",
    peers.py's likewise), TFLOP/s:

    - fp16, one table per (D, causal), a line per N: each tensor-core step
      in fp16, step 04 in fp16 (standard attention with cuBLAS tensor-core
      GEMMs, S and P in 16 bits), the fp32 step measured beside them (06),
      each SDPA peer in fp16; then each step's ratio to SDPA
      FLASH_ATTENTION (FlashAttention-2) at the same shape in the same run
      (its TFLOP/s over flash's: > 1, the step is faster), and each
      tensor-core step's fraction of the mma.sync ceiling
      (MMA_SYNC_F16_TFLOPS);
    - bf16, one table, a line per (D, causal, N) where bf16 was measured
      (print_tc_bf16());
    - why each point not measured was not, once per message.
    A cell is looked up by (step, dtype, B, N, D, causal): a peer measured at
    another B (another --tc-tokens) stays out of the ratios.
    """
    if not rows and not peers:
        return
    index = {}
    for r in rows + peers:
        key = (r["step"], r["dtype"], int(r["B"]), int(r["Sq"]), int(r["D"]), int(r["causal"]))
        index.setdefault(key, r)
    everything = rows + peers
    tokens = max(int(r["B"]) * int(r["Sq"]) for r in everything)
    heads = everything[0]["Hq"]
    ceiling = "%g" % MMA_SYNC_F16_TFLOPS

    # ---- fp16, per (D, causal)
    f16 = [r for r in everything if r["dtype"] == "fp16"]
    steps16 = _ordered(rows, "fp16")
    tc_steps = [s for s in steps16 if s != BASE_STEP]   # the tensor-core steps
    base16 = [s for s in steps16 if s == BASE_STEP]     # standard attention in fp16
    fp32_steps = _ordered(rows, "fp32")                 # step 06, measured beside them
    peers16 = _ordered(peers, "fp16")
    blocks = sorted({(int(r["D"]), int(r["causal"])) for r in f16})
    for d, c in blocks:
        ns = sorted({(int(r["Sq"]), int(r["B"])) for r in f16
                     if int(r["D"]) == d and int(r["causal"]) == c})
        cols = ([("%s fp16" % s, s, "fp16") for s in tc_steps] +
                [("%s fp16 (standard)" % s, s, "fp16") for s in base16] +
                [("%s fp32" % s, s, "fp32") for s in fp32_steps] +
                [("%s fp16" % _peer_label(p), p, "fp16") for p in peers16])
        ratio_steps = [(s, "fp16") for s in tc_steps + base16] + [(s, "fp32") for s in fp32_steps]
        have_flash = FLASH in peers16
        print("\n### Tensor cores: fp16, D = %d, %s (TFLOP/s; B = %d / N, Hq = %s)\n" % (
            d, "causal" if c else "not causal", tokens, heads), file=out)
        hdr = ["N", "B"] + [lab for lab, _, _ in cols]
        if have_flash:
            hdr += ["%s / flash" % s for s, _ in ratio_steps]
        hdr += ["%s of %s" % (s, ceiling) for s in tc_steps]
        print("| %s |" % " | ".join(hdr), file=out)
        print("|%s" % ("---:|" * len(hdr)), file=out)
        for n, b in ns:
            get = lambda s, t: index.get((s, t, b, n, d, c))
            cells = [str(n), str(b)] + [_tflops(get(s, t)) for _, s, t in cols]
            if have_flash:
                cells += [_ratio(get(s, t), get(FLASH, "fp16")) for s, t in ratio_steps]
            for s in tc_steps:
                r = get(s, "fp16")
                cells.append("%.0f%%" % (100.0 * float(r["tflops"]) / MMA_SYNC_F16_TFLOPS)
                             if _ok(r) else "")
            print("| %s |" % " | ".join(cells), file=out)
    if blocks and not peers16:
        print("\n(no PyTorch peers in fp16: tests/bench/peers.py writes them to peers.csv)",
              file=out)
    print_tc_bf16(rows, peers, index, tokens, heads, out)

    # ---- why the points that were not measured were not, once per message
    seen = []
    for r in everything:
        if r["status"] == "ok":
            continue
        key = (r["step"], r["dtype"], r["status"], r["note"][:160])
        if key in seen:
            continue
        if not seen:
            print("\nNot measured (tc sweep; the first point of each message):\n", file=out)
        seen.append(key)
        print("- %s %s, D = %s, causal %s, N = %s: %s: %s" % (
            _peer_label(r["step"]), r["dtype"], r["D"], r["causal"], r["Sq"], r["status"],
            r["note"][:160]), file=out)


def print_tc_bf16(rows, peers, index, tokens, heads, out):
    """print_tc_tables()'s bf16 table, a line per (D, causal, N) where bf16
    was measured: each 16-bit step and SDPA peer in bf16, each step's ratio
    to SDPA flash in bf16, and each step's bf16 TFLOP/s over its fp16."""
    b16 = [r for r in rows + peers if r["dtype"] == "bf16"]
    if not b16:
        return
    steps_b = _ordered(rows, "bf16")
    steps_b = [s for s in steps_b if s != BASE_STEP] + [s for s in steps_b if s == BASE_STEP]
    peers_b = _ordered(peers, "bf16")
    pts = sorted({(int(r["D"]), int(r["causal"]), int(r["Sq"]), int(r["B"])) for r in b16})
    print("\n### Tensor cores: bf16 (TFLOP/s; B = %d / N, Hq = %s)\n" % (tokens, heads),
          file=out)
    hdr = ["D", "causal", "N", "B"] + ["%s bf16" % s for s in steps_b] + \
          ["%s bf16" % _peer_label(p) for p in peers_b]
    if FLASH in peers_b:
        hdr += ["%s / flash" % s for s in steps_b]
    hdr += ["%s bf16 / fp16" % s for s in steps_b]
    print("| %s |" % " | ".join(hdr), file=out)
    print("|%s" % ("---:|" * len(hdr)), file=out)
    for d, c, n, b in pts:
        get = lambda s, t: index.get((s, t, b, n, d, c))
        cells = [str(d), str(c), str(n), str(b)] + [_tflops(get(s, "bf16")) for s in steps_b] + \
                [_tflops(get(p, "bf16")) for p in peers_b]
        if FLASH in peers_b:
            cells += [_ratio(get(s, "bf16"), get(FLASH, "bf16")) for s in steps_b]
        cells += [_ratio(get(s, "bf16"), get(s, "fp16")) for s in steps_b]
        print("| %s |" % " | ".join(cells), file=out)


def plot(out_dir, results, peers):
    gp = shutil.which("gnuplot")
    if not gp:
        print("notice: gnuplot not found: plots skipped (CSV is in %s)" % out_dir)
        return
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.gp")
    # the fp32 sweep, and the tensor-core sweep in fp16
    for sweep in ("fp32", "tc"):
        cmd = [gp, "-e", "sweep='%s'; results='%s'; peers='%s'; outdir='%s'" % (
            sweep, results, peers if os.path.exists(peers) else "", out_dir), script]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        if proc.returncode != 0:
            print("notice: gnuplot (%s sweep) failed: %s" % (sweep, proc.stderr.strip()[-300:]))
    pngs = sorted(glob.glob(os.path.join(out_dir, "*tflops_*.png")))
    print("plots: %s" % " ".join(pngs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/bin", help="step programs (default build/bin)")
    ap.add_argument("--out", default="build/bench",
                    help="output folder for results.csv and plots (default build/bench)")
    ap.add_argument("--steps", help="comma-separated step numbers, e.g. 04,05,06")
    ap.add_argument("--quick", action="store_true",
                    help="N in {512, 2048}, D = 64 only (a smoke test of the sweep)")
    ap.add_argument("--seqs", type=lambda s: [int(x) for x in s.split(",")],
                    help="override N, e.g. 1024,4096")
    ap.add_argument("--dims", type=lambda s: [int(x) for x in s.split(",")],
                    help="override D, e.g. 64")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--warmup", type=int, default=3, help="GPU warm-up runs (default 3)")
    ap.add_argument("--iters", type=int, default=20,
                    help="timed runs at most; the programs cap them at about 1 s")
    ap.add_argument("--cpu-limit-s", type=float, default=10.0,
                    help="skip CPU points estimated to take longer (default 10)")
    ap.add_argument("--gpu-limit-s", type=float, default=10.0,
                    help="skip GPU points whose one run is estimated to take longer (default 10)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per point")
    ap.add_argument("--print", metavar="CSV", help="only print the tables of this results.csv")
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of OUT/results.csv (build/bin/bench's GPU steps), run "
                         "only the steps it does not hold, write all back, print the tables")
    ap.add_argument("--peers", help="peers CSV (default OUT/peers.csv)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="no line per point")
    args = ap.parse_args()

    peers_path = args.peers or os.path.join(args.out, "peers.csv")
    results = os.path.join(args.out, "results.csv")
    if args.print:
        rows = read_csv(args.print)
    elif args.merge:
        # build/bin/bench wrote the GPU steps' rows (or, with no GPU, nothing)
        kept = read_csv(results) if os.path.exists(results) else []
        have = {r["step"] for r in kept}
        if have:
            print("sweep: steps %s from %s (build/bin/bench)" % (",".join(sorted(have)), results))
        rows = merge_rows(kept, sweep(args, skip=have))
        if not rows:
            return 0
        write_csv(results, rows)
        print("wrote %s" % results)
    else:
        rows = sweep(args)
        if not rows:
            return 0
        write_csv(results, rows)
        print("wrote %s" % results)
    peers = read_csv(peers_path) if os.path.exists(peers_path) else []
    print_tables(rows, peers)
    if not args.print and not args.no_plot:
        plot(args.out, os.path.join(args.out, "results.csv"), peers_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
