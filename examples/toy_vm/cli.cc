// cli.cc: option parsing, the REPL and --stats (see cli.h).
#include "examples/toy_vm/cli.h"

#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "alloc/tagheap.h"
#include "examples/toy_vm/error.h"
#include "examples/toy_vm/eval.h"
#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/reader.h"
#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {

constexpr const char* kUsage =
    "usage: tvm [options] [file.lisp [args...]] [-- args...]\n"
    "  Runs file.lisp, or a REPL on stdin without one. Options may come before or\n"
    "  after the file; the other arguments (and all after --) are the program's\n"
    "  (command-line-args).\n"
    "options:\n"
    "  --stats            print collections, pause times, pages per tag and peak RSS at exit (stderr)\n"
    "  --gc-budget=BYTES  collect after this much allocation (suffix K, M or G; default:\n"
    "                     the collector's policy, a budget that grows with the live data)\n"
    "  --gc-trace=FILE    write every collection as Chrome trace-event JSON (Perfetto) at exit\n"
    "  --malloc=ALLOC     raw-memory domain: tagheap (tag 2, default) or system (malloc)\n"
    "  --verify           check every heap invariant (rt.verify()) after each collection, and\n"
    "                     with --generational that each minor one left nothing reachable unmarked,\n"
    "                     with --incremental that each cycle did\n"
    "  --incremental      incremental collection: each full collection as a cycle of short pauses\n"
    "                     (mark steps of at most 0.4 ms), write barriers on every store into an object\n"
    "  --generational     generational collection: minor collections of the young objects,\n"
    "                     write barriers on every store into an object (sticky mark bits)\n"
    "  --omit-barrier=set-cdr!  for tests: leave out set-cdr!'s write barrier (--verify catches it)\n"
    "  --heapmap=FILE     write a map of the heap (SVG) at exit\n"
    "  --stats-json=FILE  write the heap's statistics (JSON, gc/heap_stats.schema.json) at exit\n"
    "  --debug-fill       fill fresh blocks with 0xCD and freed ones with 0xDD\n"
    "  --max-depth=N      nested evaluation limit (default 100000; the C stack is checked too)\n"
    "  --version          print the version and configuration\n"
    "  --help             print this help\n";

struct Cli {
  VmOptions vm;
  bool stats = false;
  std::string heapmap, stats_json;
  std::optional<std::string> file;
};

// A positive count with an optional K, M or G suffix; nullopt, with the
// reason in *why, when it is malformed, zero, or does not fit a size_t
// (the digits or the suffix's shift would overflow).
std::optional<std::size_t> parse_size(const std::string& s, std::string* why) {
  *why = "expected a positive count (e.g. 65536, 64K, 8M)";
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long digits = std::strtoull(s.c_str(), &end, 10);
  const bool digits_overflow = errno == ERANGE;
  const std::string suffix(end);
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k") shift = 10;
  else if (suffix == "M" || suffix == "m") shift = 20;
  else if (suffix == "G" || suffix == "g") shift = 30;
  else if (!suffix.empty()) return std::nullopt;
  if (digits == 0) return std::nullopt;
  constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
  if (digits_overflow || digits > (kMax >> shift)) {
    *why = "too large (at most " + std::to_string(kMax) + " bytes)";
    return std::nullopt;
  }
  return static_cast<std::size_t>(digits) << shift;
}

// 0: go on; otherwise the exit code + 1 (help and version exit 0).
int parse(int argc, const char* const* argv, Cli& cli, std::ostream& out, std::ostream& err) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> std::optional<std::string> {
      const std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
      return std::nullopt;
    };
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 1;
    }
    if (a == "--version") {
      out << "tvm 0.1.0 (tagheap " << tagheap::kVersion << ")\n"
          << "configuration: gc tag " << unsigned{kGcTag} << ", object tag " << unsigned{kObjectTag}
          << ", raw tag " << unsigned{kRawTag} << "; gc budget: the collector's policy unless --gc-budget; checked build: "
#if defined(TAGHEAP_CHECKED)
          << "yes"
#else
          << "no"
#endif
          << "\n";
      return 1;
    }
    if (a == "--stats") {
      cli.stats = true;
    } else if (a == "--verify") {
      cli.vm.verify = true;
    } else if (a == "--generational") {
      cli.vm.generational = true;
    } else if (a == "--incremental") {
      cli.vm.incremental = true;
    } else if (auto v = value("--omit-barrier")) {
      if (*v != "set-cdr!") {
        err << "tvm: error: --omit-barrier: expected set-cdr!, got '" << *v << "'\n";
        return 3;
      }
      cli.vm.omit_barrier = BarrierSite::kSetCdr;
    } else if (auto v = value("--heapmap")) {
      if (v->empty()) {
        err << "tvm: error: --heapmap: expected a file name\n";
        return 3;
      }
      cli.heapmap = *v;
    } else if (auto v = value("--gc-trace")) {
      if (v->empty()) {
        err << "tvm: error: --gc-trace: expected a file name\n";
        return 3;
      }
      cli.vm.gc_trace = *v;
    } else if (auto v = value("--stats-json")) {
      if (v->empty()) {
        err << "tvm: error: --stats-json: expected a file name\n";
        return 3;
      }
      cli.stats_json = *v;
    } else if (a == "--debug-fill") {
      cli.vm.debug_fill = true;
    } else if (auto v = value("--gc-budget")) {
      std::string why;
      auto n = parse_size(*v, &why);
      if (!n) {
        err << "tvm: error: --gc-budget: " << why << ", got '" << *v << "'\n";
        return 3;
      }
      cli.vm.gc_budget = *n;
    } else if (auto v = value("--malloc")) {
      if (*v != "tagheap" && *v != "system") {
        err << "tvm: error: --malloc: expected tagheap or system, got '" << *v << "'\n";
        return 3;
      }
      cli.vm.system_malloc = *v == "system";
    } else if (auto v = value("--max-depth")) {
      std::string why;
      auto n = parse_size(*v, &why);
      if (!n || *n > 100000000) {
        err << "tvm: error: --max-depth: expected a positive count, got '" << *v << "'\n";
        return 3;
      }
      cli.vm.max_depth = static_cast<int>(*n);
    } else if (a == "--") {
      // Everything after it is the program's (a file first, if none yet).
      for (int j = i + 1; j < argc; ++j) {
        if (!cli.file) cli.file = argv[j];
        else cli.vm.args.push_back(argv[j]);
      }
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && !(cli.file && std::isdigit(static_cast<unsigned char>(a[1])))) {
      err << "tvm: error: unknown option '" << a << "' (try --help)\n";
      return 3;
    } else if (!cli.file) {
      cli.file = a;
    } else {
      cli.vm.args.push_back(a);
    }
  }
  if (cli.vm.incremental && cli.vm.generational) {
    err << "tvm: error: --incremental and --generational cannot be combined (yet)\n";
    return 3;
  }
  return 0;
}

std::string resolve(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (wd == nullptr || *wd == '\0') return path;
  return std::string(wd) + "/" + path;
}

bool repl(Mutator& m, std::istream& in, std::ostream& out, bool interactive) {
  bool ok = true;
  std::string buffer;
  std::uint32_t start_line = 1, lines = 0;
  std::string line;
  for (;;) {
    // Waiting for input (and writing the prompt) may take forever: counted
    // out of the World meanwhile, so threads spawned by earlier lines can
    // collect.
    const bool got = m.blocking([&] {
      if (interactive) out << (buffer.empty() ? "tvm> " : "...> ") << std::flush;
      return static_cast<bool>(std::getline(in, line));
    });
    if (!got) break;
    buffer += line;
    buffer += '\n';
    ++lines;
    try {
      Scope s(m);
      Value& form = m.push(Value::nil());
      Reader reader(m, buffer, start_line);
      while (reader.next(&form)) {
      }
    } catch (IncompleteInput&) {
      continue;
    } catch (VmError&) {
      // run_source reports it.
    }
    ok &= run_source(m, buffer, "<stdin>", true, start_line);
    start_line += lines;
    lines = 0;
    buffer.clear();
  }
  if (!buffer.empty()) ok &= run_source(m, buffer, "<stdin>", true, start_line);
  if (interactive) out << "\n";
  return ok;
}

void print_stats(Vm& vm, Mutator& m, std::ostream& err) {
  const tagheap::RuntimeStats s = vm.heap_stats(m);
  std::vector<GcRecord> log = vm.gc_log();
  std::vector<double> pauses;
  double mark = 0, sweep = 0;
  std::size_t freed = 0, minor = 0, cycles = 0;
  for (const GcRecord& r : log) {
    minor += r.minor;
    cycles += r.cycle_done;
    pauses.push_back(static_cast<double>(r.pause_ns) / 1e6);
    mark += static_cast<double>(r.mark_ns) / 1e6;
    sweep += static_cast<double>(r.sweep_ns) / 1e6;
    freed += r.freed_blocks;
  }
  std::sort(pauses.begin(), pauses.end());
  char buf[256];
  err << "--- tvm stats ---\n";
  err << "collections: " << log.size() << " (budget " << vm.gc_budget_bytes() << " bytes"
      << (vm.opts().gc_budget != 0 ? ", fixed" : ", the policy's now") << "), " << freed << " objects freed\n";
  if (vm.opts().generational) err << "generational: " << minor << " minor, " << log.size() - minor << " full\n";
  if (vm.opts().incremental) err << "incremental: " << cycles << " cycles in " << log.size() << " pauses\n";
  if (!pauses.empty()) {
    std::snprintf(buf, sizeof buf, "pause ms: min %.3f, median %.3f, max %.3f (mark %.3f, sweep %.3f in total)\n",
                  pauses.front(), pauses[pauses.size() / 2], pauses.back(), mark, sweep);
    err << buf;
  }
  const struct {
    tagheap::Tag tag;
    const char* what;
  } tags[] = {{kObjectTag, "objects"}, {kGcTag, "gc"}, {kRawTag, "raw"}};
  for (const auto& t : tags) {
    const tagheap::TagStats& ts = s.tags[t.tag];
    std::snprintf(buf, sizeof buf, "tag %u (%s): %zu pages (%zu abandoned), %zu blocks, %zu bytes in use\n",
                  unsigned{t.tag}, t.what, ts.pages, ts.abandoned_pages, ts.blocks, ts.bytes_in_use);
    err << buf;
  }
  err << "pages abandoned: " << s.total.abandoned_total << ", reclaimed: " << s.total.reclaimed_total << "\n";
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  err << "peak RSS: " << ru.ru_maxrss / 1024 << " MiB (" << ru.ru_maxrss << " KiB)\n";
}

bool run(const Cli& cli, std::istream& in, std::ostream& out, std::ostream& err, bool interactive);

template <class F>
void run_on_vm_stack(F&& f) {
  constexpr std::size_t kVmStack = std::size_t{64} << 20;  // as threads.cc's kThreadStack
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kVmStack);
  pthread_t thread;
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<F*>(arg))();
    return nullptr;
  };
  if (pthread_create(&thread, &attr, trampoline, &f) == 0) {
    pthread_join(thread, nullptr);
  } else {
    f();  // no thread to be had: run here, with this thread's stack
  }
  pthread_attr_destroy(&attr);
}

}  // namespace

int tvm_main(int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err,
             bool interactive) {
  Cli cli;
  if (const int rc = parse(argc, argv, cli, out, err)) return rc - 1;
  cli.vm.out = &out;
  cli.vm.err = &err;
  if (cli.file) cli.vm.script_name = *cli.file;
  bool ok = false;
  // The interpreter runs on a thread with the same 64 MiB stack as the
  // threads it spawns, so recursion limits do not depend on the thread (nor
  // on the embedder's stack: tests call tvm_main in-process).
  run_on_vm_stack([&] { ok = run(cli, in, out, err, interactive); });
  return ok ? 0 : 1;
}

namespace {
bool run(const Cli& cli, std::istream& in, std::ostream& out, std::ostream& err, bool interactive) {
  VmOptions options = cli.vm;
  if (!options.gc_trace.empty()) options.gc_trace = resolve(options.gc_trace);
  Vm vm(options);
  bool ok;
  {
    Mutator m(vm);
    vm.init(m);
    if (cli.file) {
      ok = run_file(m, resolve(*cli.file), *cli.file);
    } else {
      ok = repl(m, in, out, interactive) || interactive;
    }
    vm.join_all(m);
    out.flush();
    if (cli.stats) print_stats(vm, m, err);
    for (const auto& [path, write] : {std::pair{cli.heapmap, &Vm::write_heap_map}, std::pair{cli.stats_json, &Vm::write_stats_json}}) {
      if (path.empty()) continue;
      if (!(vm.*write)(m, resolve(path))) {
        err << "tvm: error: cannot write " << path << ": " << std::strerror(errno) << "\n";
        ok = false;
      }
    }
    if (!vm.write_gc_trace()) {
      err << "tvm: error: cannot write " << cli.vm.gc_trace << ": " << std::strerror(errno) << "\n";
      ok = false;
    }
  }
  return ok;
}
}  // namespace

}  // namespace tvm
