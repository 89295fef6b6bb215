"""boehm_client_test: a Boehm client and the script that runs it.

tests/NAME.c is compiled against Debian's gc.h and linked with -lgc;
tests/NAME.sh runs it with Debian's libgc (which checks the test itself) and
with libgc.so.1 through LD_LIBRARY_PATH (tests/common.sh).
"""

def boehm_client_test(name, size, tags = [], data = []):
    native.cc_binary(
        name = name + "_bin",
        testonly = 1,
        srcs = ["tests/%s.c" % name],
        copts = ["-std=c11", "-Wall", "-Werror"],
        linkopts = ["-lgc", "-pthread"],
    )
    native.sh_test(
        name = name,
        size = size,
        tags = tags,
        srcs = ["tests/%s.sh" % name],
        args = ["$(location :libgc.so.1)", "$(location :%s_bin)" % name],
        data = [":libgc.so.1", ":%s_bin" % name, "tests/common.sh"] + data,
    )
