# The tensor-core sweep's TFLOP/s against sequence length: one line per
# step (step 04 in the same 16-bit type, steps 08 on) and per PyTorch SDPA
# backend measured in the same run, one PNG per (head dim, causal):
# build/bench/tc_tflops_fp16_d128_causal0.png …
#
#   gnuplot -e "results='build/bench/results.csv'; peers='build/bench/peers.csv'; outdir='build/bench'" tests/bench/plot_tc.gp
#
# Optional: dtype='bf16' (default fp16); prefix='…' (default tc_tflops).
# sweep.py runs this after a sweep when gnuplot exists. Columns (results.csv
# and peers.csv alike): 1 step, 2 name, 4 dtype, 5 B, 8 Sq, 10 D, 11 causal,
# 13 tflops, 16 status, 18 sweep; rows of the tc sweep only (B = 16384 / N).

if (!exists("results")) results = "build/bench/results.csv"
if (!exists("peers")) peers = ""
if (!exists("outdir")) outdir = "build/bench"
if (!exists("dtype")) dtype = "fp16"
if (!exists("prefix")) prefix = "tc_tflops"

set datafile separator ","
set terminal pngcairo size 1000,600 noenhanced font ",11"
set logscale x 2
set xlabel "sequence length N (B = 16384 / N, Hq = 32)"
set ylabel sprintf("TFLOP/s (forward, %s)", dtype)
set key outside right top
set grid
set yrange [0:*]

tcrows = sprintf("$4 == \"%s\" && $18 ~ /^tc/", dtype)
rows_of(f) = sprintf("< awk -F, 'NR > 1 && %s' '%s'", tcrows, f)
steps = system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s { print $1 }' '%s' | sort -u | tr '\\n' ' '", tcrows, results))
names = system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s && !seen[$1]++ { print $1 \"_\" $2 }' '%s' | sort | tr '\\n' ' '", tcrows, results))
blocks = system(sprintf("awk -F, 'NR > 1 && %s { print $10 \"_\" $11 }' '%s' | sort -u -t_ -k1,1n -k2,2n | tr '\\n' ' '", tcrows, results))
peer_steps = (peers ne "") ? system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s { print $1 }' '%s' | sort -u | tr '\\n' ' '", tcrows, peers)) : ""
results_tc = rows_of(results)
peers_tc = (peers ne "") ? rows_of(peers) : ""

# y value of a row when it belongs to series s in block (d, c), else NaN
pick(s, d, c) = (strcol(1) eq s && column(10) == d && column(11) == c && strcol(16) eq "ok") ? column(13) : NaN

do for [b in blocks] {
    d = int(word(system(sprintf("echo %s | tr _ ' '", b)), 1))
    c = int(word(system(sprintf("echo %s | tr _ ' '", b)), 2))
    set output sprintf("%s/%s_%s_d%d_causal%d.png", outdir, prefix, dtype, d, c)
    set title sprintf("%s attention forward on tensor cores, Hq = 32, D = %d, %s", dtype, d, c ? "causal" : "not causal")
    if (peer_steps ne "") {
        plot for [i = 1:words(steps)] results_tc using 8:(pick(word(steps, i), d, c)) \
                 with linespoints lw 2 pt 7 title word(names, i), \
             for [p in peer_steps] peers_tc using 8:(pick(p, d, c)) \
                 with linespoints lw 2 dt 2 pt 6 title "PyTorch ".p
    } else {
        plot for [i = 1:words(steps)] results_tc using 8:(pick(word(steps, i), d, c)) \
                 with linespoints lw 2 pt 7 title word(names, i)
    }
    unset output
}
