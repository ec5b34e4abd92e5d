# TFLOP/s against sequence length, one line per step (and per PyTorch
# peer), one PNG per (head dim, causal), for one of the two sweeps:
#   sweep='fp32' (default): build/bench/tflops_d64_causal0.png …, the fp32
#     sweep (B = 1), log-scale TFLOP/s;
#   sweep='tc': build/bench/tc_tflops_fp16_d128_causal0.png …, the
#     tensor-core sweep (B = 16384 / N) in one 16-bit type (dtype='fp16'
#     by default, or 'bf16'): step 04 in that type, steps 08 on, and the
#     PyTorch SDPA backends measured in the same run.
#
#   gnuplot -e "results='build/bench/results.csv'; peers='build/bench/peers.csv'; outdir='build/bench'" tests/bench/plot.gp
#   gnuplot -e "sweep='tc'; results='…'; peers='…'; outdir='…'" tests/bench/plot.gp
#
# Optional: prefix='…' names the tc sweep's files (default tc_tflops).
# sweep.py runs both after a sweep when gnuplot exists. Columns (results.csv
# and peers.csv alike): 1 step, 2 name, 4 dtype, 8 Sq, 10 D, 11 causal,
# 13 tflops, 16 status, 18 sweep. Points whose status is not "ok" (oom,
# skipped) are left out, and so are the other sweep's rows.

if (!exists("results")) results = "build/bench/results.csv"
if (!exists("peers")) peers = ""
if (!exists("outdir")) outdir = "build/bench"
if (!exists("sweep")) sweep = "fp32"
if (!exists("dtype")) dtype = "fp16"
if (!exists("prefix")) prefix = "tc_tflops"
tc = (sweep eq "tc")

set datafile separator ","
set terminal pngcairo size 1000,600 noenhanced font ",11"
set logscale x 2
if (tc) {
    set xlabel "sequence length N (B = 16384 / N, Hq = 32)"
    set ylabel sprintf("TFLOP/s (forward, %s)", dtype)
} else {
    set logscale y 10
    set xlabel "sequence length N"
    set ylabel "TFLOP/s (forward, fp32)"
}
set key outside right top
set grid
if (tc) set yrange [0:*]

# The step numbers, names and (D, causal) blocks present, read with awk.
# (fp32 sweep rows: dtype fp32 and sweep not "tc"; a file older than the
# sweep column has no column 18, read as ""; the line's CR is matched away.
# tc sweep rows: the chosen dtype and sweep "tc".)
rows = tc ? sprintf("$4 == \"%s\" && $18 ~ /^tc/", dtype) : "$4 == \"fp32\" && $18 !~ /^tc/"
steps = system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s { print $1 }' '%s' | sort -u | tr '\\n' ' '", rows, results))
names = system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s && !seen[$1]++ { print $1 \"_\" $2 }' '%s' | sort | tr '\\n' ' '", rows, results))
blocks = system(sprintf("awk -F, 'NR > 1 && %s { print $10 \"_\" $11 }' '%s' | sort -u -t_ -k1,1n -k2,2n | tr '\\n' ' '", rows, results))
peer_steps = (peers ne "") ? system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s { print $1 }' '%s' | sort -u | tr '\\n' ' '", rows, peers)) : ""

# the sweep's rows of each file, through awk (gnuplot reads them from the pipe)
rows_of(f) = sprintf("< awk -F, 'NR > 1 && %s' '%s'", rows, f)
results_rows = rows_of(results)
peers_rows = (peers ne "") ? rows_of(peers) : ""

# y value of a row when it belongs to series s in block (d, c), else NaN
pick(s, d, c) = (strcol(1) eq s && column(10) == d && column(11) == c && strcol(16) eq "ok") ? column(13) : NaN

do for [b in blocks] {
    d = int(word(system(sprintf("echo %s | tr _ ' '", b)), 1))
    c = int(word(system(sprintf("echo %s | tr _ ' '", b)), 2))
    if (tc) {
        set output sprintf("%s/%s_%s_d%d_causal%d.png", outdir, prefix, dtype, d, c)
        set title sprintf("%s attention forward on tensor cores, Hq = 32, D = %d, %s", dtype, d, c ? "causal" : "not causal")
    } else {
        set output sprintf("%s/tflops_d%d_causal%d.png", outdir, d, c)
        set title sprintf("fp32 attention forward, B = 1, Hq = 32, D = %d, %s", d, c ? "causal" : "not causal")
    }
    if (peer_steps ne "") {
        plot for [i = 1:words(steps)] results_rows using 8:(pick(word(steps, i), d, c)) \
                 with linespoints lw 2 pt 7 title word(names, i), \
             for [p in peer_steps] peers_rows using 8:(pick(p, d, c)) \
                 with linespoints lw 2 dt 2 pt 6 title "PyTorch ".p
    } else {
        plot for [i = 1:words(steps)] results_rows using 8:(pick(word(steps, i), d, c)) \
                 with linespoints lw 2 pt 7 title word(names, i)
    }
    unset output
}
