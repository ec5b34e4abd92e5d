# TFLOP/s against sequence length, one line per step (and per PyTorch
# peer), one PNG per (head dim, causal): build/bench/tflops_d64_causal0.png …
#
#   gnuplot -e "results='build/bench/results.csv'; peers='build/bench/peers.csv'; outdir='build/bench'" tests/bench/plot.gp
#
# sweep.py runs this after a sweep when gnuplot exists. Columns (results.csv
# and peers.csv alike): 1 step, 2 name, 4 dtype, 8 Sq, 10 D, 11 causal,
# 13 tflops, 16 status, 18 sweep. Points whose status is not "ok" (oom,
# skipped) are left out, and so are the rows of the tensor-core sweep
# (sweep "tc": fp16/bf16 at B = 16384 / N; sweep.py prints their tables):
# these plots are the fp32 sweep's.

if (!exists("results")) results = "build/bench/results.csv"
if (!exists("peers")) peers = ""
if (!exists("outdir")) outdir = "build/bench"

set datafile separator ","
set terminal pngcairo size 1000,600 noenhanced font ",11"
set logscale x 2
set logscale y 10
set xlabel "sequence length N"
set ylabel "TFLOP/s (forward, fp32)"
set key outside right top
set grid

# The step numbers, names and (D, causal) blocks present, read with awk.
# (fp32 sweep rows: dtype fp32 and sweep not "tc"; a file older than the
# sweep column has no column 18, read as ""; the line's CR is matched away)
fp32rows = "$4 == \"fp32\" && $18 !~ /^tc/"
steps = system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s { print $1 }' '%s' | sort -u | tr '\\n' ' '", fp32rows, results))
names = system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s && !seen[$1]++ { print $1 \"_\" $2 }' '%s' | sort | tr '\\n' ' '", fp32rows, results))
blocks = system(sprintf("awk -F, 'NR > 1 && %s { print $10 \"_\" $11 }' '%s' | sort -u -t_ -k1,1n -k2,2n | tr '\\n' ' '", fp32rows, results))
peer_steps = (peers ne "") ? system(sprintf("awk -F, 'NR > 1 && $16 == \"ok\" && %s { print $1 }' '%s' | sort -u | tr '\\n' ' '", fp32rows, peers)) : ""

# the fp32 sweep's rows of each file, through awk (gnuplot reads them from the pipe)
fp32_of(f) = sprintf("< awk -F, 'NR > 1 && %s' '%s'", fp32rows, f)
results_fp32 = fp32_of(results)
peers_fp32 = (peers ne "") ? fp32_of(peers) : ""

# y value of a row when it belongs to series s in block (d, c), else NaN
pick(s, d, c) = (strcol(1) eq s && column(10) == d && column(11) == c && strcol(16) eq "ok") ? column(13) : NaN

do for [b in blocks] {
    d = int(word(system(sprintf("echo %s | tr _ ' '", b)), 1))
    c = int(word(system(sprintf("echo %s | tr _ ' '", b)), 2))
    set output sprintf("%s/tflops_d%d_causal%d.png", outdir, d, c)
    set title sprintf("fp32 attention forward, B = 1, Hq = 32, D = %d, %s", d, c ? "causal" : "not causal")
    if (peer_steps ne "") {
        plot for [i = 1:words(steps)] results_fp32 using 8:(pick(word(steps, i), d, c)) \
                 with linespoints lw 2 pt 7 title word(names, i), \
             for [p in peer_steps] peers_fp32 using 8:(pick(p, d, c)) \
                 with linespoints lw 2 dt 2 pt 6 title "PyTorch ".p
    } else {
        plot for [i = 1:words(steps)] results_fp32 using 8:(pick(word(steps, i), d, c)) \
                 with linespoints lw 2 pt 7 title word(names, i)
    }
    unset output
}
