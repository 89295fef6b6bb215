#!/usr/bin/env python3
"""Writes the seed corpus (corpus/seed-NN): structured operation sequences
for ops.h's interpreter, one scenario family per file, deterministic.

    python3 tests/fuzz/make_corpus.py     # rewrites tests/fuzz/corpus/seed-*

libFuzzer adds the inputs it finds interesting next to them (see README.md).
"""
import os
import random

CREATE, DESTROY, ATTACH, DETACH, ALLOC, BURST, FREE, FREE_OTHER, ABANDON, WALK, LINK, COLLECT, CHECK = (
    0, 1, 2, 3, 4, 7, 8, 10, 11, 12, 13, 14, 15)


class Gen:
    def __init__(self, seed, debug_fill=False):
        self.r = random.Random(seed)
        self.out = bytearray()
        if debug_fill:
            self.out.append(0x80 | DETACH)  # first byte's top bit: debug_fill

    def op(self, *bs):
        self.out.extend(b & 0xFF for b in bs)

    def u16(self):
        v = self.r.randrange(65536)
        return [v & 0xFF, v >> 8]

    def alloc(self, tag=None, kind=None, b=None):
        tag = self.r.randrange(4) if tag is None else tag
        kind = self.r.choice([0, 1, 2, 3, 4, 0xC0, 0xE3]) if kind is None else kind
        self.op(ALLOC, tag, kind, self.r.randrange(256) if b is None else b)

    def burst(self, n, tag, kind=0, b=48):
        self.op(BURST, n, tag, kind, b)

    def free(self):
        self.op(FREE, *self.u16())

    def free_other(self, slot=None):
        self.op(FREE_OTHER, self.r.randrange(5) if slot is None else slot, *self.u16())

    def link(self):
        self.op(LINK, 0, *self.u16(), *self.u16())

    def root(self, add=True):
        self.op(LINK, 3 if add else 1, *self.u16(), 0, 0)

    def walk(self, mask=0xF):
        self.op(WALK, mask)


def basic(g):
    g.op(ATTACH, 0)
    for _ in range(g.r.randrange(10, 40)):
        g.alloc()
    for _ in range(g.r.randrange(5, 20)):
        g.free()
    g.walk(g.r.randrange(16))
    g.walk()
    g.op(CHECK, 1)


def cross(g):
    g.op(CREATE, 1, CREATE, 2, ATTACH, 0)
    g.burst(g.r.randrange(20, 64), g.r.randrange(4), g.r.choice([0, 3, 4]), g.r.randrange(256))
    for _ in range(g.r.randrange(10, 30)):
        g.free_other()
    g.walk()
    g.burst(30, 1)  # the owner collects its thread-free list
    g.walk()
    g.op(CHECK, 1)


def abandon_reclaim(g):
    tag = g.r.randrange(4)
    kind = g.r.choice([0, 3, 4, 5])
    b = g.r.randrange(256)
    g.op(ATTACH, 0)
    g.burst(63, tag, kind, b)
    g.burst(40, (tag + 1) % 4, kind, b)
    g.op(DETACH)
    g.op(ABANDON if g.r.random() < 0.5 else DESTROY, 0)
    g.free_other(4)       # a free into the pool
    g.walk()
    g.op(ATTACH, 1)
    g.burst(20, tag, kind, b)  # reclaims pages of its tag only
    g.walk()
    g.free_other(0)
    g.op(CHECK, 1, CHECK, 0)
    g.walk()


def gc_graph(g):
    g.op(ATTACH, 0)
    for _ in range(g.r.randrange(2, 5)):
        g.burst(g.r.randrange(10, 50), g.r.choice([1, 2, 1, 0]), g.r.choice([0, 1, 3]), g.r.randrange(256))
    for _ in range(g.r.randrange(20, 60)):
        g.link()
    for _ in range(g.r.randrange(3, 10)):
        g.root()
    g.op(COLLECT, 0)
    for _ in range(10):
        g.link()
    g.op(COLLECT, g.r.randrange(256) | 1)
    g.op(CHECK, 1)


def gc_over_threads(g):
    for s in range(3):
        g.op(ATTACH, s)
        g.burst(g.r.randrange(10, 40), g.r.choice([1, 2]), g.r.choice([0, 3]), g.r.randrange(256))
        for _ in range(15):
            g.link()
        for _ in range(3):
            g.root()
    g.op(DETACH, DESTROY, 1, ABANDON, 2, ATTACH, 3)
    g.op(COLLECT, 0)
    g.burst(30, 1)
    g.op(COLLECT, 0xFF)
    g.free_other()
    g.op(COLLECT, 0x55)


def sizes(g):
    g.op(ATTACH, 0)
    for kind in [0, 3, 4, 5, 6, 7, 0xC4, 0xE4, 0xE7, 0xC6]:
        g.alloc(kind=kind)
    g.walk()
    for _ in range(6):
        g.free_other()
    g.walk()
    for _ in range(4):
        g.free()
    g.op(CHECK, 1, CHECK, 0)


def mixed(g):
    for _ in range(g.r.randrange(60, 200)):
        x = g.r.random()
        if x < 0.35:
            g.alloc()
        elif x < 0.45:
            g.burst(g.r.randrange(1, 64), g.r.randrange(4), g.r.choice([0, 2, 3, 4]), g.r.randrange(256))
        elif x < 0.6:
            g.free()
        elif x < 0.67:
            g.free_other()
        elif x < 0.72:
            g.op(ATTACH, g.r.randrange(4))
        elif x < 0.75:
            g.op(DESTROY, g.r.randrange(4))
        elif x < 0.78:
            g.op(ABANDON, g.r.randrange(4))
        elif x < 0.85:
            g.link()
        elif x < 0.9:
            g.root()
        elif x < 0.93:
            g.op(COLLECT, g.r.randrange(256))
        elif x < 0.97:
            g.walk(g.r.randrange(16))
        else:
            g.op(CHECK, g.r.randrange(2))


FAMILIES = [basic, cross, abandon_reclaim, gc_graph, gc_over_threads, sizes, mixed, mixed]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.startswith("seed-"):
            os.remove(os.path.join(out, name))
    n = 0
    for round_ in range(5):
        for fam in FAMILIES:
            g = Gen(1000 * round_ + n, debug_fill=(n % 5 == 4))
            fam(g)
            with open(os.path.join(out, "seed-%02d-%s" % (n, fam.__name__)), "wb") as f:
                f.write(bytes(g.out))
            n += 1
    print("wrote %d seeds to %s" % (n, out))


if __name__ == "__main__":
    main()
