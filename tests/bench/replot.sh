#!/bin/sh
# Regenerate every committed figure under notes/results/ from the committed
# CSV, with gnuplot (run from the project root; `make deps-plot` installs it):
#   sh tests/bench/replot.sh
# - the fp32 sweep on the H100 (2026-11-24): tests/bench/plot.gp, TFLOP/s by N,
#   D = 64 and 128, causal off and on, steps 04-07 beside PyTorch;
# - the tensor-core ladder on the H200 (2026-12-02, commit e8b477a):
#   tests/bench/plot.gp with sweep='tc', fp16 TFLOP/s by N, steps 04 (fp16), 08, 09, 10
#   beside PyTorch SDPA flash, cuDNN and efficient, measured in the same run.
set -eu
R=notes/results
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
gnuplot -e "results='$R/2026-11-24-h100-bench.csv'; peers='$R/2026-11-24-h100-peers.csv'; outdir='$T'" tests/bench/plot.gp
for f in "$T"/tflops_*.png; do cp "$f" "$R/2026-11-24-h100-$(basename "$f")"; done
gnuplot -e "sweep='tc'; results='$R/2026-12-02-h200-bench-e8b477a.csv'; peers='$R/2026-12-02-h200-peers-e8b477a.csv'; outdir='$T'; prefix='2026-12-02-h200-tc-e8b477a'" tests/bench/plot.gp
cp "$T"/2026-12-02-h200-tc-e8b477a_*.png "$R/"
ls "$R"/*.png
