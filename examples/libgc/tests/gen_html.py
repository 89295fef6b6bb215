#!/usr/bin/env python3
"""Writes one HTML document of a given shape for the w3m tests and benchmark.

usage: gen_html.py KIND OUT.html   (KIND: table, nested, links, pre, mixed)

Deterministic (fixed seed), so a failure reproduces. Each shape stresses a
different part of w3m's renderer: table layout, deep nesting of block
elements, thousands of anchors (w3m numbers them and lists them), long
preformatted text, and a several-MB mix of all of them.
"""
import random
import sys

WORDS = ("tagheap walks every page of a tag and finds each live block once "
         "garbage collector mark sweep conservative interior pointer root stack "
         "register segment heap thread abandoned reclaim").split()


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def table(rng, out, rows=1500, cols=8):
    out.append('<table border="1" cellpadding="2">')
    out.append("<tr>" + "".join("<th>col %d</th>" % c for c in range(cols)) + "</tr>")
    for r in range(rows):
        cells = "".join("<td>%d.%d %s</td>" % (r, c, words(rng, rng.randint(1, 6))) for c in range(cols))
        out.append("<tr>%s</tr>" % cells)
    out.append("</table>")


def nested(rng, out, depth=120, rounds=12):
    for k in range(rounds):
        for d in range(depth):
            tag = ("div", "blockquote", "ul", "dl")[d % 4]
            out.append("<%s>" % tag)
            if tag == "ul":
                out.append("<li>level %d %s" % (d, words(rng, 5)))
            elif tag == "dl":
                out.append("<dt>term %d<dd>%s" % (d, words(rng, 5)))
            else:
                out.append("<p>level %d %s</p>" % (d, words(rng, 8)))
        for d in reversed(range(depth)):
            out.append("</%s>" % ("div", "blockquote", "ul", "dl")[d % 4])


def links(rng, out, n=12000):
    out.append("<p>")
    for i in range(n):
        out.append('<a href="http://example.invalid/page/%d?q=%s">link %d %s</a> ' % (i, rng.choice(WORDS), i, rng.choice(WORDS)))
        if i % 20 == 19:
            out.append("<br>")
    out.append("</p>")


def pre(rng, out, lines=40000):
    out.append("<pre>")
    for i in range(lines):
        out.append("%06d %s" % (i, words(rng, rng.randint(0, 10)).replace("<", "&lt;")))
    out.append("</pre>")


def mixed(rng, out):
    for part in range(6):
        out.append("<h2>part %d</h2>" % part)
        table(rng, out, rows=400, cols=6)
        nested(rng, out, depth=40, rounds=3)
        links(rng, out, n=3000)
        pre(rng, out, lines=8000)
        for _ in range(300):
            out.append("<p>%s <b>%s</b> <i>%s</i></p>" % (words(rng, 30), words(rng, 3), words(rng, 4)))


KINDS = {"table": table, "nested": nested, "links": links, "pre": pre, "mixed": mixed}


def main():
    kind, path = sys.argv[1], sys.argv[2]
    rng = random.Random(18)
    out = ["<html><head><title>%s</title></head><body>" % kind]
    KINDS[kind](rng, out)
    out.append("</body></html>")
    with open(path, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
