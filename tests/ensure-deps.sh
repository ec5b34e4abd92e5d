#!/bin/sh
# Make sure a tool the build needs is there: check (the C unit-test library),
# doxygen or gnuplot. As root it installs the missing Debian package; otherwise
# it prints the exact command to run and fails.
set -e
case "$1" in
  check)   have() { [ -f /usr/include/check.h ] || [ -n "$CHECK_CFLAGS" ]; }; pkgs="check libsubunit-dev pkg-config" ;;
  doxygen) have() { command -v doxygen >/dev/null 2>&1; }; pkgs="doxygen" ;;
  gnuplot) have() { command -v gnuplot >/dev/null 2>&1; }; pkgs="gnuplot-nox" ;;
  *) echo "usage: $0 check|doxygen|gnuplot" >&2; exit 2 ;;
esac
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing $pkgs (missing $1)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs; } >/dev/null 2>&1 \
    || { echo "error: apt-get install $pkgs failed" >&2; exit 1; }
  have && exit 0
fi
echo "error: $1 is missing; install it with: sudo apt-get install -y $pkgs" >&2
exit 1
