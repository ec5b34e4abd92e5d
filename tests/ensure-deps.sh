#!/bin/sh
# Make sure a tool the build needs is there: check (the C unit-test library),
# doxygen and MathJax (the book's formulas; MATHJAX_DIR, default Debian's
# libjs-mathjax), gnuplot, libFuzzer (clang's fuzzer runtime, for `make fuzz`),
# cppcheck and clang-tidy (`make lint`), or valgrind. As root it installs the missing Debian package; otherwise
# it prints the exact command to run and fails.
set -e
case "$1" in
  check)   have() { [ -f /usr/include/check.h ] || [ -n "$CHECK_CFLAGS" ]; }; pkgs="check libsubunit-dev pkg-config" ;;
  doxygen) have() { command -v doxygen >/dev/null 2>&1; }; pkgs="doxygen" ;;
  mathjax) mj=${MATHJAX_DIR:-/usr/share/javascript/mathjax}
           have() { [ -f "$mj/MathJax.js" ]; }; pkgs="libjs-mathjax"; what="MathJax ($mj/MathJax.js)"
           [ "$mj" = /usr/share/javascript/mathjax ] || noinstall=1 ;; # the package would not put it there
  gnuplot) have() { command -v gnuplot >/dev/null 2>&1; }; pkgs="gnuplot-nox" ;;
  fuzz)    # a real probe: clang links a fuzz target (the runtime is its own package)
           have() {
             command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 || return 1
             t=$(mktemp -d) || return 1
             printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$t/p.c"
             "${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined "$t/p.c" -o "$t/p" >/dev/null 2>&1; r=$?
             rm -rf "$t"; return $r
           }
           v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
           pkgs="clang ${v:+libclang-rt-$v-dev}" ;;
  lint)    have() { command -v cppcheck >/dev/null 2>&1 && command -v "${CLANG_TIDY:-clang-tidy}" >/dev/null 2>&1; }
           pkgs="cppcheck clang-tidy" ;;
  valgrind) have() { command -v valgrind >/dev/null 2>&1; }; pkgs="valgrind" ;;
  *) echo "usage: $0 check|doxygen|mathjax|gnuplot|fuzz|lint|valgrind" >&2; exit 2 ;;
esac
have && exit 0
if [ -z "$noinstall" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing $pkgs (missing $1)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs; } >/dev/null 2>&1 \
    || { echo "error: apt-get install $pkgs failed" >&2; exit 1; }
  if [ "$1" = fuzz ] && ! have; then # clang is there now: its fuzzer runtime
    v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
    pkgs="libclang-rt-$v-dev"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null 2>&1 || true
  fi
  have && exit 0
fi
echo "error: ${what:-$1} is missing; install it with: sudo apt-get install -y $pkgs" >&2
exit 1
