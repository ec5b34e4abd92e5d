#!/bin/sh
# make diff: what one step adds over another (run from the repository root).
#
#   sh tests/stepdiff.sh FROM TO [FULL]
#
# FROM, TO: a step number (07) or a step's file (07/backward_cpu.c). A step
# number stands for the step's idea file, named by STEP_IDEA in its
# step.mk (kernel.cuh for a GPU step, attention.c for a CPU step), plus the
# common/ helpers the TO step introduces (STEP_INTRODUCES: shown as new
# files). An empty FROM means TO's diff base (STEP_BASE in its step.mk).
# Names that carry a step number (attn05_forward, supports05, smem05,
# launch05, attn05_step, STEP05 guards, the @file path) are normalized to NN
# first, so the diff shows the idea and not the bookkeeping.
# FULL=1: every file of both steps as it is, no normalization.
set -eu
from=${1:-}
to=${2:-}
full=${3:-}
die() { echo "make diff: $*" >&2; exit 2; }
[ -n "$to" ] || die "usage: make diff FROM=02 TO=03 (or TO=08 alone: its diff base; FULL=1: every file)"

# dir_of NN: the step's folder
dir_of() {
  d=$(ls -d steps/"$1"_* 2>/dev/null | head -n 1)
  [ -n "$d" ] || die "no step $1 under steps/"
  echo "$d"
}
# mk_var DIR NAME: a variable of the step's step.mk
mk_var() { sed -n "s/^$2[[:space:]]*:=[[:space:]]*//p" "$1/step.mk" 2>/dev/null | head -n 1; }

to_step=${to%%/*}
to_dir=$(dir_of "$to_step")
if [ -z "$from" ]; then
  from=$(mk_var "$to_dir" STEP_BASE)
  [ -n "$from" ] || die "step $to_step names no diff base (STEP_BASE in $to_dir/step.mk)"
fi
from_step=${from%%/*}
from_dir=$(dir_of "$from_step")

# files_of SPEC DIR: the files a spec names
files_of() {
  case $1 in
    */*) f="$2/${1#*/}"; [ -f "$f" ] || die "no file $f"; echo "$f" ;;
    *) idea=$(mk_var "$2" STEP_IDEA); [ -n "$idea" ] || die "$2/step.mk names no STEP_IDEA"
       echo "$2/$idea" ;;
  esac
}

if [ "$full" = 1 ]; then
  diff -ruN "$from_dir" "$to_dir" || true
  exit 0
fi

norm() {
  sed -E 's/\b(attn|supports|smem|launch)[0-9][0-9]/\1NN/g; s/STEP[0-9][0-9]_/STEPNN_/g; s#@file steps/[0-9][0-9]_[a-z0-9_]+/#@file steps/NN/#'
}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
a=$(files_of "$from" "$from_dir")
b=$(files_of "$to" "$to_dir")
norm < "$a" > "$T/a"
norm < "$b" > "$T/b"
diff -u --label "$a" --label "$b" "$T/a" "$T/b" || true
# helpers the TO step introduces to common/: new files of its lesson
case $to in */*) exit 0 ;; esac
for h in $(mk_var "$to_dir" STEP_INTRODUCES); do
  [ -f "$h" ] || die "$to_dir/step.mk: STEP_INTRODUCES names $h, which does not exist"
  diff -u --label /dev/null --label "$h" /dev/null "$h" || true
done
