"""bench_per_allocator: one benchmark source, one binary per allocator."""

load("//bazel:copts.bzl", "TAGHEAP_COPTS")

# allocator -> (define, linkopts, deps)
_ALLOCATORS = {
    "tagheap": ("BENCH_TAGHEAP", [], ["//alloc"]),
    "mimalloc": ("BENCH_MIMALLOC", ["-lmimalloc"], []),
    "jemalloc": ("BENCH_JEMALLOC", ["-ljemalloc"], []),
    "glibc": ("BENCH_GLIBC", [], []),
}

def bench_per_allocator(name, srcs, tags = []):
    """Defines name_tagheap, name_mimalloc, name_jemalloc, name_glibc."""
    for alloc, (define, linkopts, deps) in _ALLOCATORS.items():
        native.cc_binary(
            name = name + "_" + alloc,
            srcs = srcs,
            copts = TAGHEAP_COPTS + ["-D" + define + "=1"],
            linkopts = linkopts + ["-pthread"],
            deps = deps + [":common"],
            tags = tags + ["benchmark"],
        )
