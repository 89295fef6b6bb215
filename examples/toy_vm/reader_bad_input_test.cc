// reader_bad_input_test.cc: malformed programs. Each must end in one clear
// error naming file:line:col (exit 1 for a script; the REPL reports it and
// goes on), or be read correctly; never a crash, a hang or a C-stack
// overflow.
#include <doctest/doctest.h>

#include <cstdint>
#include <regex>
#include <string>

#include "examples/toy_vm/reader.h"
#include "examples/toy_vm/test_util.h"

using tvm::test::lisp;
using tvm::test::out_of;
using tvm::test::Run;
using tvm::test::run_tvm;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A script that fails: exit 1, one error line "t.lisp:L:C: error: <what>...".
void expect_error(const Run& r, const std::string& where, const std::string& what) {
  INFO("rc=" << r.rc << " out=[" << r.out << "] err=[" << r.err.substr(0, 400) << "]");
  CHECK(r.rc == 1);
  CHECK(r.err.rfind("t.lisp:" + where + ": error: " + what, 0) == 0);
  CHECK(r.err.size() < 400);  // clear means short, whatever the input's size
  CHECK(r.err.find('\n') == r.err.size() - 1);
}

// The REPL reads `bad` (which must fail), then a good form: the error is
// reported with a <stdin> location and the good form still runs.
void expect_repl_goes_on(const std::string& bad, const std::string& what) {
  Run r = run_tvm({}, bad + "\n(+ 40 2)\n");
  INFO("out=[" << r.out << "] err=[" << r.err.substr(0, 400) << "]");
  CHECK(r.rc == 1);
  CHECK(std::regex_search(r.err, std::regex("^<stdin>:[0-9]+:[0-9]+: error: ")));
  CHECK(has(r.err, what));
  CHECK(r.out.size() >= 3);
  CHECK(r.out.substr(r.out.size() - 3) == "42\n");
}

std::string nested(std::size_t depth) { return std::string(depth, '(') + std::string(depth, ')'); }

// splitmix64, for reproducible random bytes.
struct Bytes {
  std::uint64_t s;
  std::uint8_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<std::uint8_t>(z ^ (z >> 31));
  }
};

}  // namespace

TEST_SUITE("toy_vm.reader_bad_input") {
  TEST_CASE("unbalanced parentheses are reported where they go wrong") {
    SUBCASE("one ')' too many: the forms before it have run") {
      Run r = lisp("(display 1)\n(display 2))\n");
      CHECK(r.out == "12");
      expect_error(r, "2:12", "unexpected ')'");
      expect_error(lisp(")"), "1:1", "unexpected ')'");
      expect_error(lisp("]"), "1:1", "unexpected ']'");
    }
    SUBCASE("one ')' too few: the error names the list left open") {
      expect_error(lisp("(display 1)\n  (display (+ 1 2)\n(display 3)\n"), "2:3", "unterminated list (missing ')')");
      expect_error(lisp("[1 2"), "1:1", "unterminated list (missing ']')");
      expect_error(lisp(std::string(1000, '(')), "1:1000", "unterminated list");
    }
    SUBCASE("a closing bracket of the wrong kind") {
      expect_error(lisp("(list 1 2]"), "1:10", "mismatched ']' (expected ')')");
    }
    SUBCASE("dotted pairs that are not") {
      expect_error(lisp("(. 1)"), "1:2", "'.' at the start of a list");
      expect_error(lisp("'(1 . 2 3)"), "1:9", "expected one form after '.'");
      expect_error(lisp("'(1 .)"), "1:6", "unexpected ')'");
    }
    SUBCASE("the REPL goes on") {
      expect_repl_goes_on(")", "unexpected ')'");
      expect_repl_goes_on("(list 1]", "mismatched ']'");
    }
  }

  TEST_CASE("nesting beyond the reader's limit is an error at the opening, not a C-stack overflow") {
    const int limit = tvm::Reader::kMaxNesting;
    const std::string msg = "nesting too deep (more than " + std::to_string(limit) + " levels";
    SUBCASE("a million '(' with no ')'") {
      expect_error(lisp(std::string(1000000, '(')), "1:" + std::to_string(limit + 1), msg);
    }
    SUBCASE("a million '(' then a million ')'") {
      expect_error(lisp(nested(1000000)), "1:" + std::to_string(limit + 1), msg);
    }
    SUBCASE("a million quotes") {
      expect_error(lisp(std::string(1000000, '\'') + "x"), "1:" + std::to_string(limit + 1), msg);
    }
    SUBCASE("[ and ( mixed, on many lines") {
      std::string src;
      for (int i = 0; i < 200000; ++i) src += i % 2 ? "[\n" : "(\n";
      expect_error(lisp(src), std::to_string(limit + 1) + ":1", msg);
    }
    SUBCASE("nesting within the limit is read (and printed) correctly") {
      CHECK(out_of("(define x '" + nested(2000) + ")\n(display (length x))") == "1");
      CHECK(out_of("(display '" + nested(200) + ")") == std::string(200, '(') + std::string(200, ')'));
    }
    SUBCASE("--max-depth below the reader's limit is reported at the opening too") {
      Run r = lisp("(display 1)\n'" + nested(5000), {"--max-depth=300"});
      CHECK(r.out == "1");
      INFO(r.err);
      CHECK(std::regex_search(r.err, std::regex("^t\\.lisp:2:[0-9]+: error: nesting too deep: recursion too deep")));
    }
    SUBCASE("the REPL goes on") { expect_repl_goes_on(std::string(1000000, '('), msg); }
  }

  TEST_CASE("huge literals are read, or refused with a short message") {
    SUBCASE("a 10 MB string literal is read whole") {
      CHECK(out_of("(define s \"" + std::string(10000000, 'a') + "\")\n(display (string-length s))") == "10000000");
    }
    SUBCASE("a 1 MB symbol is read whole") {
      const std::string sym(1000000, 's');
      CHECK(out_of("(define " + sym + " 7)\n(display " + sym + ")") == "7");
    }
    SUBCASE("an integer literal with 10,000 digits is out of range, and the message is cut") {
      Run r = lisp("(display 1)\n(display " + std::string(10000, '7') + ")");
      CHECK(r.out == "1");
      expect_error(r, "2:10", "integer literal out of range (int64): 7777");
      CHECK(has(r.err, "(10000 characters)"));
      expect_error(lisp("-" + std::string(10000, '9')), "1:1", "integer literal out of range");
    }
    SUBCASE("the largest and smallest int64 are read") {
      CHECK(out_of("(display 9223372036854775807) (display \" \") (display -9223372036854775808)") ==
            "9223372036854775807 -9223372036854775808");
      expect_error(lisp("9223372036854775808"), "1:1", "integer literal out of range");
    }
    SUBCASE("a 100 KB unknown # token gives a short message") {
      expect_error(lisp("#" + std::string(100000, 'x')), "1:1", "unknown syntax '#xxxx");
    }
  }

  TEST_CASE("strings and symbols must be well-formed UTF-8") {
    SUBCASE("well-formed UTF-8 is read, and columns count characters") {
      CHECK(out_of("(display \"h\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80\")") == "h\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80");
      CHECK(out_of("(define caf\xC3\xA9 3) (display caf\xC3\xA9)") == "3");
      expect_error(lisp("(list \"\xC3\xA9\xC3\xA9\" (car 1))"), "1:12", "car: expected a pair");
    }
    // Each bad sequence, in a string and in a symbol, both at column 11.
    const struct {
      const char* name;
      std::string bytes;
    } bad[] = {
        {"a stray continuation byte", "\x80"},
        {"0xFF", "\xFF"},
        {"an overlong '/'", "\xC0\xAF"},
        {"an overlong 3-byte form", "\xE0\x80\xAF"},
        {"a UTF-16 surrogate", "\xED\xA0\x80"},
        {"beyond U+10FFFF", "\xF4\x90\x80\x80"},
        {"a lead byte 0xF5", "\xF5\x80\x80\x80"},
        {"a 2-byte lead before ASCII", "\xC3("},
        {"a 3-byte sequence cut short", "\xE2\x82 "},
    };
    for (const auto& b : bad) {
      CAPTURE(b.name);
      const char byte[] = "0123456789ABCDEF";
      const auto lead = static_cast<unsigned char>(b.bytes[0]);
      const std::string shown = std::string("(byte 0x") + byte[lead >> 4] + byte[lead & 15] + ")";
      expect_error(lisp("(display \"" + b.bytes + "\")"), "1:11", "invalid UTF-8 in a string " + shown);
      expect_error(lisp("(display a" + b.bytes + ")"), "1:11", "invalid UTF-8 in a symbol " + shown);
    }
    SUBCASE("a sequence cut by the end of the file") {
      expect_error(lisp("(display \"\xE2\x82"), "1:11", "invalid UTF-8 in a string (byte 0xE2)");
      expect_error(lisp("abc\xF0\x9F\x98"), "1:4", "invalid UTF-8 in a symbol (byte 0xF0)");
    }
    SUBCASE("the REPL goes on") { expect_repl_goes_on("(display \"\xFF\")", "invalid UTF-8"); }
  }

  TEST_CASE("NUL bytes and control characters are errors; \\0 in a string is not") {
    using namespace std::string_literals;
    expect_error(lisp("(display 1)\n\0"s), "2:1", "NUL byte in the source");
    expect_error(lisp("(display \"a\0b\")"s), "1:12", "NUL byte in the source");
    expect_error(lisp("(quote a\0b)"s), "1:9", "NUL byte in the source");
    expect_error(lisp("(quote a\x01" "b)"), "1:9", "unexpected control character 0x01");
    expect_error(lisp("  \x1B"), "1:3", "unexpected control character 0x1B");
    expect_error(lisp("(list 1 \x7F)"), "1:9", "unexpected control character 0x7F");
    CHECK(out_of("(display (string-length \"a\\0b\"))") == "3");
    CHECK(out_of("(display\t\r\f\"tabs and form feeds are space\")") == "tabs and form feeds are space");
    expect_repl_goes_on("(display \"a\0b\")"s, "NUL byte");
  }

  TEST_CASE("a file that is not text fails at its first bad byte") {
    SUBCASE("an ELF header") {
      expect_error(lisp(std::string("\x7F" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0", 16)), "1:1",
                   "unexpected control character 0x7F");
    }
    SUBCASE("a PNG header") {
      expect_error(lisp(std::string("\x89PNG\r\n\x1A\n\0\0\0\rIHDR", 16)), "1:1", "invalid UTF-8 in a symbol (byte 0x89)");
    }
    SUBCASE("random bytes, as a script and through the REPL: an error, never a crash") {
      for (std::uint64_t seed = 1; seed <= 60; ++seed) {
        CAPTURE(seed);
        Bytes rng{seed};
        std::string src(4096, '\0');
        for (char& c : src) c = static_cast<char>(rng.next());
        Run r = lisp(src);
        INFO("err=[" << r.err.substr(0, 300) << "]");
        CHECK(r.rc == 1);
        CHECK(std::regex_search(r.err, std::regex("^t\\.lisp:[0-9]+:[0-9]+: error: ")));
        Run repl = run_tvm({}, src + "\n(+ 40 2)\n");
        CHECK(repl.rc == 1);
      }
    }
    SUBCASE("a UTF-8 byte order mark at the start is skipped") {
      CHECK(out_of("\xEF\xBB\xBF(display \"bom\")") == "bom");
    }
  }

  TEST_CASE("empty input, comments only and a lone quote") {
    Run empty = lisp("");
    CHECK(empty.rc == 0);
    CHECK(empty.out.empty());
    CHECK(empty.err.empty());
    CHECK(lisp("; nothing\n#| nor\n here |#\n   \n").rc == 0);
    expect_error(lisp("'"), "1:1", "a quote with nothing after it");
    expect_error(lisp("(display 1)\n  '  ; a comment\n"), "2:3", "a quote with nothing after it");
    expect_error(lisp("(list 1 ')"), "1:10", "unexpected ')'");
    Run repl = run_tvm({}, "'\n");
    CHECK(repl.rc == 1);
    CHECK(has(repl.err, "<stdin>:1:1: error: a quote with nothing after it"));
  }

  TEST_CASE("# syntax the reader does not know") {
    expect_error(lisp("#x1F"), "1:1", "unknown syntax '#x1F'");
    expect_error(lisp("(display #(1 2))"), "1:10", "unknown syntax '#'");
    expect_error(lisp("#\\a"), "1:1", "unknown syntax '#\\a'");
    expect_error(lisp("(list #)"), "1:7", "unknown syntax '#'");
    expect_error(lisp("#;(hidden)"), "1:1", "unknown syntax '#'");
    expect_error(lisp("(display 1)\n#| open\n"), "2:1", "unterminated block comment");
    expect_repl_goes_on("#true-ish", "unknown syntax '#true-ish'");
  }

  TEST_CASE("unterminated strings and bad escapes") {
    expect_error(lisp("(display \"abc"), "1:10", "unterminated string");
    expect_error(lisp("(display \"abc\\"), "1:10", "unterminated string");
    expect_error(lisp("(display \"line one\nline two)\n"), "1:10", "unterminated string");
    expect_error(lisp("(display \"a\\qb\")"), "1:13", "unknown string escape '\\q'");
    expect_error(lisp("(display \"a\\\x01\")"), "1:13", "unknown string escape '\\' followed by byte 0x01");
    expect_error(lisp("(display \"a\\\xC3\xA9\")"), "1:13", "unknown string escape '\\' followed by byte 0xC3");
    CHECK(out_of("(display \"a\\\nb \\\\ \\\" \\t|\")") == "ab \\ \" \t|");
    // An open string at the end of the REPL's input: reported when stdin ends.
    Run repl = run_tvm({}, "(+ 1 2)\n(display \"abc\n");
    CHECK(repl.out == "3\n");
    CHECK(has(repl.err, "<stdin>:2:10: error: unterminated string"));
    expect_repl_goes_on("(display \"a\\qb\")", "unknown string escape");
  }

  TEST_CASE("an error in a top-level form without a location names where the form starts") {
    expect_error(lisp("(display 1)\n   undefined-thing\n"), "2:4", "unbound variable: undefined-thing");
  }
}
