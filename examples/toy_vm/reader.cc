// reader.cc: the recursive-descent reader (see reader.h).
#include "examples/toy_vm/reader.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {
bool is_delimiter(int c) {
  return c == -1 || std::strchr(" \t\r\n\f()[];\"'", c) != nullptr;
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

Reader::Reader(Mutator& m, std::string_view src, std::uint32_t first_line) : m_(m), src_(src), line_(first_line) {}

char Reader::get() {
  const char c = src_[pos_++];
  if (c == '\n') {
    ++line_;
    col_ = 1;
  } else {
    ++col_;
  }
  return c;
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
    } else if (c != -1 && std::strchr(" \t\r\n\f", c) != nullptr) {
      get();
    } else {
      return;
    }
  }
}

bool Reader::next(Value* out) {
  skip_space();
  if (peek() == -1) return false;
  *out = read_form();
  return true;
}

Value Reader::read_form() {
  DepthGuard depth(m_);
  skip_space();
  const Loc at = position();
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
      tail.as<Pair>()->cdr = read_form();
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
    }
    tail = cell;
  }
}

Value Reader::read_string(Loc open) {
  std::string s;
  for (;;) {
    const int c = peek();
    if (c == -1) throw IncompleteInput("unterminated string", open);
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
        default: fail(std::string("unknown string escape '\\") + static_cast<char>(e) + "'", at);
      }
    } else {
      s += static_cast<char>(c);
    }
  }
  return make_string(m_, s);
}

Value Reader::read_atom(Loc at) {
  std::string tok;
  while (!is_delimiter(peek())) tok += get();
  if (tok.empty()) fail(std::string("unexpected character '") + static_cast<char>(peek()) + "'", at);
  if (tok[0] == '#') {
    if (tok == "#t" || tok == "#true") return Value::t();
    if (tok == "#f" || tok == "#false") return Value::f();
    fail("unknown syntax '" + tok + "'", at);
  }
  Value v;
  bool out_of_range = false;
  if (parse_number(m_, tok, &v, &out_of_range)) return v;
  if (out_of_range) fail("integer literal out of range (int64): " + tok, at);
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
