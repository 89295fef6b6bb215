// value.h: the toy VM's values and object layouts.
//
// Design
//   A Value is one 64-bit word:
//     ...xxx1   a fixnum (63-bit signed integer, shifted left by one)
//     ...0000   a pointer to a heap object (blocks are 16-byte aligned)
//     ...xx10   a constant: (), #f, #t, unspecified, unbound, eof
//   Integers are int64: those outside the fixnum range are boxed (Int).
//   Floats are always boxed (Float).
//
//   Every heap object starts with an 8-byte Header (type, source line and
//   column); Collector::trace reads the type to find the object's references.
//   Where objects live (see heap.h for the allocation wrapper):
//     tag 1 (GC)      every object below: pairs, vectors, closures,
//                     environments, strings, symbols, floats, ints,
//                     primitives, threads, weak boxes, weak tables. Only
//                     this tag is walked.
//     tag 0 (object)  data with no references, owned by one GC object:
//                     string bytes, symbol names. Freed by the collector's
//                     finalize() of the owner (never walked).
//     tag 2 (raw)     raw buffers: vector storage, weak tables' slots,
//                     reader buffers; tagheap
//                     or the system malloc (--malloc=).
//   Objects never move, so a root only has to keep its object reachable.
//
// Invariants
//   is_ptr(v)      => v points to the start of a live tag-1 block whose
//                     Header is fully initialised
//   a GC object's Value fields are initialised before its allocator returns
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tvm {

class Mutator;

enum class Type : std::uint8_t {
  kPair = 1, kVector, kString, kSymbol, kFloat, kInt, kClosure, kEnv, kPrimitive, kThread, kWeakBox, kWeakTable,
};
inline constexpr Type kLastType = Type::kWeakTable;

// Source position of a form read from a file (0: none).
struct Loc {
  std::uint32_t line = 0;
  std::uint32_t col = 0;
  bool known() const { return line != 0; }
};

struct Header {
  Type type;
  std::uint8_t flags;
  std::uint16_t col;
  std::uint32_t line;
  Loc loc() const { return {line, col}; }
};
static_assert(sizeof(Header) == 8);

class Value {
 public:
  constexpr Value() = default;
  static constexpr Value from_bits(std::uint64_t b) { Value v; v.bits_ = b; return v; }
  static Value ptr(const void* p) { return from_bits(reinterpret_cast<std::uint64_t>(p)); }

  static constexpr std::int64_t kFixMin = -(std::int64_t{1} << 62);
  static constexpr std::int64_t kFixMax = (std::int64_t{1} << 62) - 1;
  static constexpr bool fits_fixnum(std::int64_t i) { return i >= kFixMin && i <= kFixMax; }
  static constexpr Value fixnum(std::int64_t i) { return from_bits((static_cast<std::uint64_t>(i) << 1) | 1); }

  static constexpr Value nil() { return from_bits(0x2); }
  static constexpr Value f() { return from_bits(0x6); }
  static constexpr Value t() { return from_bits(0xA); }
  static constexpr Value unspecified() { return from_bits(0xE); }
  static constexpr Value unbound() { return from_bits(0x12); }
  static constexpr Value eof() { return from_bits(0x16); }
  static constexpr Value boolean(bool b) { return b ? t() : f(); }

  constexpr std::uint64_t bits() const { return bits_; }
  constexpr bool is_fixnum() const { return bits_ & 1; }
  constexpr std::int64_t as_fixnum() const { return static_cast<std::int64_t>(bits_) >> 1; }
  constexpr bool is_ptr() const { return (bits_ & 15) == 0 && bits_ != 0; }
  constexpr bool is_nil() const { return bits_ == nil().bits_; }
  constexpr bool is_false() const { return bits_ == f().bits_; }
  constexpr bool truthy() const { return bits_ != f().bits_; }
  Header* header() const { return reinterpret_cast<Header*>(bits_); }
  bool is(Type t) const { return is_ptr() && header()->type == t; }
  template <class T>
  T* as() const { return reinterpret_cast<T*>(bits_); }

  constexpr bool operator==(const Value& o) const = default;

 private:
  std::uint64_t bits_ = 0xE;  // unspecified
};
static_assert(sizeof(Value) == 8);

struct Pair {
  Header h;
  Value car, cdr;
};

struct Vector {
  Header h;
  std::uint64_t length;
  Value* items;  // raw domain, `length` Values
};

struct String {
  Header h;
  std::uint64_t length;
  char* data;  // tag 0, length bytes + NUL
  std::string_view view() const { return {data, length}; }
};

struct Symbol {
  Header h;
  std::uint64_t length;
  char* name;                             // tag 0, never freed (symbols are interned forever)
  std::atomic<std::uint64_t> global;      // global binding (Value bits), unbound() when none
  std::string_view view() const { return {name, length}; }
};

struct Float {
  Header h;
  double value;
};

struct Int {
  Header h;
  std::int64_t value;
};

struct Closure {
  Header h;
  std::uint32_t required;  // parameters before the rest parameter
  std::uint32_t has_rest;
  Value params;            // the lambda list as written
  Value body;              // list of forms
  Value env;               // Env, or () for the global environment
  Value name;              // Symbol, or #f
};

// A frame: `count` (symbol, value) slots, plus a list of ((sym . val) ...)
// for variables that an internal define adds later.
struct Env {
  Header h;
  std::uint64_t count;
  Value parent;  // Env, or () for the global environment
  Value extra;
  Value slots[];  // 2 * count: symbol, value, symbol, value, ...
};

using PrimFn = Value (*)(Mutator& m, Value* args, std::size_t n);
struct Primitive {
  Header h;
  PrimFn fn;
  const char* name;
  std::int32_t min_args, max_args;  // max -1: any
};

struct ThreadHandle;
struct Thread {
  Header h;
  ThreadHandle* handle;  // owned by the Vm
};

// (make-weak-box v): target does not keep its object alive; the collector
// sets it to nullptr once the object is unreachable (Tracer::mark_weak). A
// value that is no object (a fixnum, a constant) is held as is in immediate.
struct WeakBox {
  Header h;
  void* target;     // a GC object held weakly, or nullptr (cleared, or `immediate` holds the value)
  Value immediate;  // the value when it is no object; #f otherwise
};

// (make-weak-table): an eq?-keyed hash table whose entries are ephemerons:
// a key does not keep itself alive, and its value is kept only while the
// key is (Tracer::mark_ephemeron); the collector's process_weak removes the
// entries whose keys died (collector.cc). Open addressing with linear
// probing over `capacity` (key, value) slots in raw memory.
struct WeakTable {
  Header h;
  std::uint64_t count;     // live entries
  std::uint64_t used;      // live entries and removed ones (tombstones)
  std::uint64_t capacity;  // slots: 0 or a power of two
  Value* entries;          // raw domain, 2 * capacity Values: key, value, ...
  static constexpr Value kEmpty = Value::unbound();       // a slot never used
  static constexpr Value kRemoved = Value::from_bits(0);  // a slot whose entry went
};

// --- small accessors (no checks: callers check types) ---
inline Value car(Value v) { return v.as<Pair>()->car; }
inline Value cdr(Value v) { return v.as<Pair>()->cdr; }
inline bool is_pair(Value v) { return v.is(Type::kPair); }
inline bool is_symbol(Value v) { return v.is(Type::kSymbol); }
inline bool is_number(Value v) { return v.is_fixnum() || v.is(Type::kInt) || v.is(Type::kFloat); }
inline bool is_integer(Value v) { return v.is_fixnum() || v.is(Type::kInt); }
inline std::int64_t integer_value(Value v) { return v.is_fixnum() ? v.as_fixnum() : v.as<Int>()->value; }
inline double number_as_double(Value v) {
  return v.is(Type::kFloat) ? v.as<Float>()->value : static_cast<double>(integer_value(v));
}
inline bool is_procedure(Value v) { return v.is(Type::kClosure) || v.is(Type::kPrimitive); }
inline Loc loc_of(Value v) { return v.is_ptr() ? v.header()->loc() : Loc{}; }

const char* type_name(Value v);

}  // namespace tvm
