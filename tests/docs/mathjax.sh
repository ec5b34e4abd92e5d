#!/bin/sh
# `make docs`, after Doxygen: copy the part of MathJax 2 that the book loads
# into the HTML, so that the book typesets its formulas offline and can be
# moved or archived as one folder (Doxyfile: MATHJAX_RELPATH = mathjax).
# usage: tests/docs/mathjax.sh MATHJAX_DIR HTML_DIR
# MATHJAX_DIR is Debian's libjs-mathjax (/usr/share/javascript/mathjax);
# `make deps-docs` has checked that it is there.
set -e
src=$1 html=$2
dst=$html/mathjax
[ -f "$src/MathJax.js" ] || { echo "error: no MathJax in $src (apt-get install libjs-mathjax)" >&2; exit 1; }
rm -rf "$dst"
mkdir -p "$dst"
# What Doxygen's configuration loads (tex2jax, TeX input with AMSmath and
# AMSsymbols, HTML-CSS output), and what those load on demand: the other
# extensions (menu, zoom, font warnings), the element jax, the English
# strings, and the TeX web fonts. HTML-CSS's font tables for STIX stay
# because it picks STIX when the reader has those fonts installed.
for f in MathJax.js extensions jax/input/TeX jax/element localization/en \
         jax/output/HTML-CSS/jax.js jax/output/HTML-CSS/config.js \
         jax/output/HTML-CSS/imageFonts.js jax/output/HTML-CSS/autoload \
         jax/output/HTML-CSS/fonts/TeX jax/output/HTML-CSS/fonts/STIX \
         fonts/HTML-CSS/TeX/woff fonts/HTML-CSS/TeX/otf; do
  mkdir -p "$dst/$(dirname "$f")"
  cp -RL "$src/$f" "$dst/$f"
done
# MathJax is Apache-2.0: its notice travels with the copy
for c in /usr/share/doc/libjs-mathjax/copyright "$src/LICENSE"; do
  [ -f "$c" ] && cp "$c" "$dst/COPYRIGHT" && break
done
echo "docs: MathJax $(sed -n 's/.*fileversion *= *"\([^"]*\)".*/\1/p' "$src/MathJax.js" | head -n 1) copied to $dst ($(du -sh "$dst" | cut -f1))"
