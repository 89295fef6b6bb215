// reader.h: source text to forms.
//
// Design
//   A recursive-descent reader over a text buffer (the caller keeps it
//   alive; load_file puts files in a raw-domain buffer). Forms are ordinary
//   Lisp data built with cons/intern/make_string, so reading allocates and
//   may collect: partly built lists sit in the reader's Mutator stack slots.
//   Every list's first pair carries the line and column of its opening
//   parenthesis in its Header (and 'x the position of the quote), which is
//   where error messages point.
//
//   Syntax: ( ) [ ] . ' ; comments, #| block comments |#, "strings" with
//   \n \t \\ \" escapes, integers (int64), floats (1.5, 1e3, .5), #t #f,
//   symbols (anything else).
//
//   Bad input is a VmError with the line and column where it went wrong, never
//   a crash: lists and quotes nest at most kMaxNesting deep (and never past
//   the C stack's margin); strings and symbols must be well-formed UTF-8
//   (columns count characters); a NUL byte or another control character
//   outside a string is an error, so a binary file fails at its first one.
//   An IncompleteInput (an open list, string, block comment or quote at the
//   end) lets the REPL read more lines. A leading UTF-8 BOM is skipped.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "examples/toy_vm/error.h"
#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/value.h"

namespace tvm {

// A syntax error at the end of the input (an open list or string): the REPL
// reads another line and tries again.
class IncompleteInput : public VmError {
 public:
  using VmError::VmError;
};

class Reader {
 public:
  static constexpr int kMaxNesting = 10000;

  // `src` must outlive the Reader. `first_line`: the line number of src's
  // first line (the REPL numbers its lines across inputs).
  Reader(Mutator& m, std::string_view src, std::uint32_t first_line = 1);
  // Reads the next form into *out (a rooted slot). False at end of input.
  // Throws VmError (with a location) on a syntax error.
  bool next(Value* out);
  Loc position() const { return {line_, col_}; }
  // Where the form that next() read last (or is reading) starts.
  Loc form_start() const { return form_start_; }

 private:
  Value read_form();
  Value read_list(Loc open, char close);
  Value read_string(Loc open);
  Value read_atom(Loc at);
  void skip_space();
  int peek() const { return pos_ < src_.size() ? static_cast<unsigned char>(src_[pos_]) : -1; }
  char get();
  [[noreturn]] void fail(const std::string& msg, Loc at);
  // Appends the UTF-8 sequence at pos_ to `into`, or fails naming `what`.
  void take_utf8(std::string& into, const char* what);
  // Fails on a NUL byte or a control character.
  void check_text(int c, Loc at);

  Mutator& m_;
  std::string_view src_;
  std::size_t pos_ = 0;
  std::uint32_t line_, col_ = 1;
  int nesting_ = 0;
  Loc form_start_;
};

// The whole file in a raw-domain buffer (RawText frees it). Throws VmError
// if it cannot be read.
class RawText {
 public:
  RawText(Mutator& m, const std::string& path);
  ~RawText();
  RawText(const RawText&) = delete;
  RawText& operator=(const RawText&) = delete;
  std::string_view view() const { return {data_, size_}; }

 private:
  Mutator& m_;
  char* data_ = nullptr;
  std::size_t size_ = 0;
};

// Frees a raw_alloc block (tagheap or malloc, as the VM was configured).
void raw_free(Mutator& m, void* p);

}  // namespace tvm
