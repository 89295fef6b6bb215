"""Compiler flags and build macros for tagheap's own targets, in one place.

Every library is built in two flavours: the plain one and a `_checked` one
compiled with TAGHEAP_CHECKED (expensive invariant checks on). Every test is
built against both, so the suite runs fast and checked in one `bazel test`.
"""

TAGHEAP_COPTS = [
    "-std=c++20",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    "-fno-strict-aliasing",
    "-mpopcnt",  # std::popcount is on the sweep and walk paths; a libgcc call without it
    # The walk's inner loop (the same instructions) took 0.71 or 0.88 ns per
    # block depending on where an unrelated change put its first byte: with
    # 16-byte alignment it may straddle a 32-byte fetch window. A user's own
    # visit_blocks instantiation is aligned by the user's flags.
    "-falign-loops=32",
]

TAGHEAP_CHECKED_COPTS = ["-DTAGHEAP_CHECKED=1"]

# The allocator's own code drops frame pointers (Bazel's default keeps them):
# about 5% of the churn benchmark's time. Sanitizer builds keep them for
# their stack traces.
TAGHEAP_HOT_COPTS = select({
    "//bazel:sanitizer": [],
    "//conditions:default": ["-fomit-frame-pointer"],
})

def _checked_dep(dep):
    # Internal deps get their checked flavour; system or external ones don't.
    if dep.startswith("@") or dep.endswith("doctest_main"):
        return dep
    if ":" not in dep:  # "//alloc" is short for "//alloc:alloc"
        dep = dep + ":" + dep.split("/")[-1]
    return dep + "_checked"

def tagheap_cc_library(name, deps = [], copts = [], checked = True, **kwargs):
    native.cc_library(name = name, deps = deps, copts = TAGHEAP_COPTS + copts, **kwargs)
    if checked:
        native.cc_library(
            name = name + "_checked",
            deps = [_checked_dep(d) for d in deps],
            copts = TAGHEAP_COPTS + TAGHEAP_CHECKED_COPTS + copts,
            **kwargs
        )

def tagheap_cc_test(name, deps = [], copts = [], size = "small", tags = [], checked = True, **kwargs):
    """A doctest suite built twice: `name` and `name_checked`.

    The plain flavour of a pair is tagged "has_checked_flavour" and the
    checked one "checked", so that a sanitizer run can pick one flavour of
    each suite (.bazelrc: ASan runs the checked ones, TSan the plain ones).
    """
    native.cc_test(
        name = name,
        deps = deps + ["//tests:doctest_main"],
        copts = TAGHEAP_COPTS + copts,
        size = size,
        tags = tags + (["has_checked_flavour"] if checked else []),
        linkopts = ["-pthread"],
        **kwargs
    )
    if checked:
        native.cc_test(
            name = name + "_checked",
            deps = [_checked_dep(d) for d in deps] + ["//tests:doctest_main"],
            copts = TAGHEAP_COPTS + TAGHEAP_CHECKED_COPTS + copts,
            size = size,
            tags = tags + ["checked"],
            linkopts = ["-pthread"],
            **kwargs
        )

def tagheap_cc_binary(name, deps = [], copts = [], **kwargs):
    native.cc_binary(name = name, deps = deps, copts = TAGHEAP_COPTS + copts, linkopts = ["-pthread"], **kwargs)
