#!/usr/bin/env python3
"""`make docs-check` (CI): the book's formulas reached the HTML, typeset.

usage: check.py HTML_DIR [--need PAGE,…] PAGE…
PAGE is an HTML page's name without .html, or a glob of them (notes_0*);
--need names the pages that must carry formulas (notes 02, 03 and 07).

1. Every page that loads MathJax loads it from a file that exists in
   HTML_DIR (no CDN, nothing outside the book), and the input and output
   jax, the extensions and the TeX fonts its configuration names are there.
2. Each --need page has inline (\\( … \\)) and display (\\[ … \\]) formulas, as
   Doxygen writes \\f$ … \\f$ and \\f[ … \\f] for MathJax, balanced.
3. On every PAGE, MathJax can read each formula: braces and \\begin/\\end balanced, and
   every \\command one that its TeX input (with the configured extensions)
   defines, so that no formula shows up as a red error in the browser.
4. No PAGE shows a formula's source instead: no \\f$, \\f[, \\f] left (one
   in a code span is not converted), and no TeX subscript or superscript
   braces (_{ ^{) outside the formulas, in prose or code.
Prints one line per page; exit 1 on the first kind of failure found.
"""
import fnmatch
import html
import os
import re
import sys


def fail(msg):
    print("docs-check: FAIL: " + msg)
    sys.exit(1)


def text_of(page, code=False):
    """The page's text as MathJax's tex2jax sees it: tags dropped, entities
    decoded, <script>/<style> removed, and code (tex2jax skips it) unless
    `code`."""
    page = re.sub(r"(?is)<(script|style|pre%s)\b.*?</\1>" % ("" if code else "|code"), " ", page)
    # Doxygen's code blocks are <div class="fragment"> of <div class="line">
    if not code:
        page = re.sub(r'(?is)<div class="fragment">.*?</div><!-- fragment -->', " ", page)
    return html.unescape(re.sub(r"(?s)<[^>]+>", "", page))


def tex_macros(mj, cfg):
    """The \\commands and environments MathJax's TeX input knows: the names
    its tables define, in the jax and the TeX extensions the page loads."""
    files = [os.path.join(mj, "jax/input/TeX/jax.js")]
    files += [os.path.join(mj, "extensions", e) for e in re.findall(r'"(TeX/[^"]+\.js)"', cfg)]
    known = set()
    for f in files:
        with open(f, encoding="utf-8") as h:
            src = h.read()
        known |= set(re.findall(r"[{,]\"?([A-Za-z]+)\"?:", src))
        known |= set(re.findall(r'"\\\\([A-Za-z]+)"', src))
    return known


def tex_problem(tex, known):
    """Why MathJax would reject this formula, or None."""
    depth = 0
    for i, c in enumerate(tex):
        if c in "{}" and i > 0 and tex[i - 1] == "\\":
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return "a } with no {"
    if depth:
        return "unbalanced braces"
    for name in re.findall(r"\\([A-Za-z]+)", tex):
        if name not in known:
            return "\\%s is not a MathJax TeX command" % name
    envs = re.findall(r"\\(begin|end)\{([^}]*)\}", tex)
    stack = []
    for kind, env in envs:
        if env not in known:
            return "no environment %s in MathJax" % env
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            return "\\end{%s} does not match" % env
    return "\\begin{%s} never ends" % stack[-1] if stack else None


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    root, args = sys.argv[1], sys.argv[2:]
    need = []
    if len(args) >= 2 and args[0] == "--need":
        need, args = args[1].split(","), args[2:]
    names = sorted(n[:-5] for n in os.listdir(root) if n.endswith(".html"))
    pages = []
    for a in need + args:
        hit = [n for n in names if fnmatch.fnmatchcase(n, a)]
        if not hit:
            fail(f"no page {a}.html in {root}")
        pages += [n for n in hit if n not in pages]
    script_re = re.compile(r'<script type="text/javascript" async="async" src="([^"]*MathJax\.js)[^"]*"')
    loaders = 0
    for name in sorted(os.listdir(root)):
        if not name.endswith(".html"):
            continue
        with open(os.path.join(root, name), encoding="utf-8") as f:
            page = f.read()
        for src in script_re.findall(page):
            if "//" in src:
                fail(f"{name} loads MathJax from {src}, not from the book")
            if not os.path.isfile(os.path.join(root, src)):
                fail(f"{name} loads {src}, which is not in {root}")
            loaders += 1
    if loaders == 0:
        fail(f"no page in {root} loads MathJax (USE_MATHJAX in the Doxyfile?)")

    first = os.path.join(root, pages[0] + ".html")
    if not os.path.isfile(first):
        fail(f"no {first}")
    with open(first, encoding="utf-8") as f:
        page = f.read()
    m = re.search(r"MathJax\.Hub\.Config\(\{(.*?)\}\);", page, re.S)
    if not m:
        fail(f"{first}: no MathJax configuration")
    src = script_re.search(page).group(1)
    mj = os.path.dirname(os.path.join(root, src))
    need = []
    cfg = m.group(1)
    for ext in re.findall(r'"([^"]+\.js)"', cfg):
        need.append("extensions/" + ext)
    for jax in re.findall(r'"((?:input|output)/[^"]+)"', cfg):
        need += [f"jax/{jax}/config.js", f"jax/{jax}/jax.js"]
    if "output/HTML-CSS" in cfg:
        need += ["jax/output/HTML-CSS/fonts/TeX/fontdata.js",
                 "fonts/HTML-CSS/TeX/woff/MathJax_Main-Regular.woff",
                 "fonts/HTML-CSS/TeX/otf/MathJax_Main-Regular.otf"]
    missing = [p for p in need if not os.path.isfile(os.path.join(mj, p))]
    if missing:
        fail(f"MathJax in {mj} lacks {', '.join(missing)}")
    print(f"docs-check: {loaders} pages load {src}; its {len(need)} files for this configuration are there")
    known = tex_macros(mj, cfg)

    for p in pages:
        path = os.path.join(root, p + ".html")
        if not os.path.isfile(path):
            fail(f"no {path}")
        with open(path, encoding="utf-8") as f:
            page = f.read()
        if re.search(r"\\f[$\[\]{}]", page):
            line = page[:re.search(r"\\f[$\[\]{}]", page).start()].count("\n") + 1
            fail(f"{path}:{line}: a \\f formula Doxygen did not convert (in a code span?)")
        text = text_of(page)
        inline = re.findall(r"\\\((.*?)\\\)", text, re.S)
        display = re.findall(r"\\\[(.*?)\\\]", text, re.S)
        rest = re.sub(r"\\\[.*?\\\]|\\\(.*?\\\)", " ", text, flags=re.S)
        if "\\(" in rest or "\\)" in rest or "\\[" in rest or "\\]" in rest:
            fail(f"{path}: an unbalanced \\( \\) or \\[ \\]")
        for tex in inline + display:
            why = tex_problem(tex, known)
            if why:
                fail(f"{path}: {why}: {tex.strip()[:120]}")
        if p in need and (not inline or not display):
            fail(f"{path}: {len(inline)} inline and {len(display)} display formulas; each needs some")
        prose = re.sub(r"\\\[.*?\\\]|\\\(.*?\\\)", " ", text_of(page, code=True), flags=re.S)
        raw = re.search(r".{0,30}[_^]\{.{0,30}", prose)
        if raw:
            fail(f"{path}: TeX braces outside a formula: …{raw.group(0).strip()}…")
        print(f"docs-check: {p}: {len(inline)} inline and {len(display)} display formulas, all readable by MathJax, no formula source left")


if __name__ == "__main__":
    main()
