// reader.cc: the recursive-descent reader (see reader.h).
#include "examples/toy_vm/reader.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "examples/toy_vm/barrier.h"
#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {
// Not strchr: it would find the string's own terminator for a NUL byte.
bool is_delimiter(int c) {
  switch (c) {
    case -1: case ' ': case '\t': case '\r': case '\n': case '\f':
    case '(': case ')': case '[': case ']': case ';': case '"': case '\'':
      return true;
    default:
      return false;
  }
}

// A C0 control character or DEL, other than the whitespace the reader skips.
bool is_control(int c) {
  return (c >= 0 && c < 0x20 && c != '\t' && c != '\r' && c != '\n' && c != '\f') || c == 0x7F;
}

// The length of the well-formed UTF-8 sequence at s[0..n) that starts with a
// byte >= 0x80, or 0 when it is not one (stray continuation byte, overlong
// form, surrogate, beyond U+10FFFF, cut short): RFC 3629's table.
std::size_t utf8_sequence(const unsigned char* s, std::size_t n) {
  const unsigned char c = s[0];
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (std::size_t i = 2; i < len; ++i)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return len;
}

std::string hex_byte(int c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(c) & 0xFF);
  return buf;
}

// A token for an error message: long ones are cut (a 10 MB literal must not
// make a 10 MB message).
std::string shown(const std::string& tok) {
  constexpr std::size_t kShown = 40;
  if (tok.size() <= kShown) return tok;
  return tok.substr(0, kShown) + "... (" + std::to_string(tok.size()) + " characters)";
}

// An integer or float literal, or false when `tok` is a symbol.
bool parse_number(Mutator& m, const std::string& tok, Value* out, bool* out_of_range) {
  const char* s = tok.c_str();
  std::size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  bool digits = false, dot = false, exp = false;
  for (std::size_t j = i; s[j]; ++j) {
    if (s[j] >= '0' && s[j] <= '9') {
      digits = true;
    } else if (s[j] == '.' && !dot && !exp) {
      dot = true;
    } else if ((s[j] == 'e' || s[j] == 'E') && digits && !exp) {
      exp = true;
      if (s[j + 1] == '+' || s[j + 1] == '-') ++j;
      if (!(s[j + 1] >= '0' && s[j + 1] <= '9')) return false;
    } else {
      return false;
    }
  }
  if (!digits) return false;
  errno = 0;
  if (!dot && !exp) {
    const long long v = std::strtoll(s, nullptr, 10);
    if (errno == ERANGE) {
      *out_of_range = true;
      return false;
    }
    *out = make_integer(m, v);
  } else {
    *out = make_float(m, std::strtod(s, nullptr));
  }
  return true;
}
}  // namespace

Reader::Reader(Mutator& m, std::string_view src, std::uint32_t first_line) : m_(m), src_(src), line_(first_line) {
  // A UTF-8 byte order mark, as some editors write one.
  if (src_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
}

char Reader::get() {
  const char c = src_[pos_++];
  if (c == '\n') {
    ++line_;
    col_ = 1;
  } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
    ++col_;  // columns count characters: a UTF-8 continuation byte is none
  }
  return c;
}

void Reader::take_utf8(std::string& into, const char* what) {
  const Loc at = position();
  const auto* s = reinterpret_cast<const unsigned char*>(src_.data() + pos_);
  const std::size_t len = utf8_sequence(s, src_.size() - pos_);
  if (len == 0) fail("invalid UTF-8 in " + std::string(what) + " (byte " + hex_byte(s[0]) + ")", at);
  for (std::size_t i = 0; i < len; ++i) into += get();
}

void Reader::check_text(int c, Loc at) {
  if (c == 0) fail("NUL byte in the source (is it a text file?)", at);
  if (is_control(c)) fail("unexpected control character " + hex_byte(c), at);
}

void Reader::fail(const std::string& msg, Loc at) { throw VmError(msg, at); }

void Reader::skip_space() {
  for (;;) {
    const int c = peek();
    if (c == ';') {
      while (peek() != -1 && peek() != '\n') get();
    } else if (c == '#' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '|') {
      const Loc open = position();
      get();
      get();
      while (!(peek() == '|' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '#')) {
        if (peek() == -1) throw IncompleteInput("unterminated block comment", open);
        get();
      }
      get();
      get();
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f') {
      get();
    } else {
      return;
    }
  }
}

bool Reader::next(Value* out) {
  skip_space();
  if (peek() == -1) return false;
  form_start_ = position();
  *out = read_form();
  return true;
}

Value Reader::read_form() {
  skip_space();
  const Loc at = position();
  // Nesting is bounded twice: by a count, so the message is the same on every
  // build and thread, and by the C stack (a small thread stack, a sanitizer's
  // big frames), both reported at the opening that went too deep.
  if (nesting_ >= kMaxNesting)
    fail("nesting too deep (more than " + std::to_string(kMaxNesting) + " levels of lists and quotes)", at);
  try {
    m_.check_depth();
  } catch (VmError& e) {
    fail(std::string("nesting too deep: ") + e.what(), at);
  }
  DepthGuard depth(m_);
  ++nesting_;
  struct Unnest {
    int& n;
    ~Unnest() { --n; }
  } unnest{nesting_};
  const int c = peek();
  if (c == -1) throw IncompleteInput("unexpected end of input", at);
  if (c == '(' || c == '[') {
    get();
    return read_list(at, c == '(' ? ')' : ']');
  }
  if (c == ')' || c == ']') {
    get();
    fail(std::string("unexpected '") + static_cast<char>(c) + "'", at);
  }
  if (c == '\'') {
    get();
    skip_space();
    if (peek() == -1) throw IncompleteInput("a quote with nothing after it", at);
    Scope s(m_);
    Value& quoted = m_.push(read_form());
    Value& tail = m_.push(cons(m_, quoted, Value::nil()));
    return cons(m_, m_.vm().sym.quote, tail, at);
  }
  if (c == '"') {
    get();
    return read_string(at);
  }
  return read_atom(at);
}

Value Reader::read_list(Loc open, char close) {
  Scope s(m_);
  Value& head = m_.push(Value::nil());
  Value& tail = m_.push(Value::nil());
  for (;;) {
    skip_space();
    const int c = peek();
    if (c == -1) throw IncompleteInput(std::string("unterminated list (missing '") + close + "')", open);
    if (c == ')' || c == ']') {
      const Loc at = position();
      get();
      if (c != close) fail(std::string("mismatched '") + static_cast<char>(c) + "' (expected '" + close + "')", at);
      return head;
    }
    if (c == '.' && pos_ + 1 <= src_.size() && is_delimiter(pos_ + 1 < src_.size() ? src_[pos_ + 1] : -1)) {
      const Loc at = position();
      get();
      if (head.is_nil()) fail("'.' at the start of a list", at);
      tail.as<Pair>()->cdr = read_form();  // tail may be old: reading allocates
      write_barrier(m_, tail);
      skip_space();
      if (peek() == -1) throw IncompleteInput(std::string("unterminated list (missing '") + close + "')", open);
      if (peek() != close) fail("expected one form after '.'", position());
      get();
      return head;
    }
    const Loc at = head.is_nil() ? open : position();
    Scope item_scope(m_);
    Value& item = m_.push(read_form());
    const Value cell = cons(m_, item, Value::nil(), at);
    if (head.is_nil()) {
      head = cell;
    } else {
      tail.as<Pair>()->cdr = cell;
      write_barrier(m_, tail);
    }
    tail = cell;
  }
}

Value Reader::read_string(Loc open) {
  std::string s;
  for (;;) {
    const int c = peek();
    if (c == -1) throw IncompleteInput("unterminated string", open);
    if (c >= 0x80) {
      take_utf8(s, "a string");
      continue;
    }
    if (c == 0) check_text(c, position());
    get();
    if (c == '"') break;
    if (c == '\\') {
      const int e = peek();
      if (e == -1) throw IncompleteInput("unterminated string", open);
      const Loc at = position();
      get();
      switch (e) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case '0': s += '\0'; break;
        case '\\': s += '\\'; break;
        case '"': s += '"'; break;
        case '\n': break;  // line continuation
        default:
          if (e < 0x21 || e >= 0x7F) fail("unknown string escape '\\' followed by byte " + hex_byte(e), at);
          fail(std::string("unknown string escape '\\") + static_cast<char>(e) + "'", at);
      }
    } else {
      s += static_cast<char>(c);
    }
  }
  return make_string(m_, s);
}

Value Reader::read_atom(Loc at) {
  std::string tok;
  while (!is_delimiter(peek())) {
    const int c = peek();
    if (c >= 0x80) {
      take_utf8(tok, "a symbol");
    } else {
      check_text(c, position());
      tok += get();
    }
  }
  if (tok.empty()) fail("unexpected character " + hex_byte(peek()), at);  // not reached: read_form takes delimiters
  if (tok[0] == '#') {
    if (tok == "#t" || tok == "#true") return Value::t();
    if (tok == "#f" || tok == "#false") return Value::f();
    fail("unknown syntax '" + shown(tok) + "'", at);
  }
  Value v;
  bool out_of_range = false;
  if (parse_number(m_, tok, &v, &out_of_range)) return v;
  if (out_of_range) fail("integer literal out of range (int64): " + shown(tok), at);
  return intern(m_, tok);
}

void raw_free(Mutator& m, void* p) {
  if (m.vm().opts().system_malloc) {
    std::free(p);
  } else {
    tagheap::free(p);
  }
}

RawText::RawText(Mutator& m, const std::string& path) : m_(m) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw VmError("cannot open " + path + ": " + std::strerror(errno));
  std::size_t cap = 4096;
  data_ = static_cast<char*>(m.raw_alloc(cap));
  for (;;) {
    if (size_ == cap) {
      auto* bigger = static_cast<char*>(m.raw_alloc(cap * 2));
      std::memcpy(bigger, data_, size_);
      raw_free(m, data_);
      data_ = bigger;
      cap *= 2;
    }
    const std::size_t n = std::fread(data_ + size_, 1, cap - size_, f);
    if (n == 0) break;
    size_ += n;
  }
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) {
    raw_free(m, data_);
    throw VmError("cannot read " + path);
  }
}

RawText::~RawText() { raw_free(m_, data_); }

}  // namespace tvm
