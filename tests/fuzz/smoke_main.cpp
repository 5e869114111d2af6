// A libFuzzer-compatible driver for the ordinary (GCC, uninstrumented) build: links with a fuzz
// target's LLVMFuzzerTestOneInput and runs it on every file of a corpus directory, then on
// deterministic mutations of those files (bit flips, byte overwrites, inserts, deletes,
// duplicated ranges, splices of two inputs) until a number of runs or seconds is reached.
//
// What it is for: the suite's bounded fuzz smoke run without the second, ASan+libFuzzer build
// (scripts/fuzz.sh builds that one for real fuzzing). The target's own checks (std::abort on a
// broken property), crashes, uncaught exceptions and hangs (CTest's timeout) are findings; memory
// errors that only a sanitizer sees are not.
//
// Usage: fuzz_smoke_<target> CORPUS_DIR [--runs N] [--seconds S] [--seed N] [--artifacts DIR]
//        fuzz_smoke_<target> FILE...        (replay: each file once, e.g. a crash-* artifact)
// On a finding the input is written to DIR/crash-<run> (default: the working directory) before
// the process dies with the signal; the seed and run number reproduce it. Exit 0 otherwise,
// 2 on usage errors. Single-threaded.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

// The input being run, for the crash handler (which may only use async-signal-safe calls).
const uint8_t* g_current = nullptr;
size_t g_current_size = 0;
char g_crash_path[4096] = {0};

void OnCrash(int sig) {
  if (g_crash_path[0] != '\0') {
    int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      size_t off = 0;
      while (off < g_current_size) {
        ssize_t n = ::write(fd, g_current + off, g_current_size - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(fd);
    }
    const char msg[] = "fuzz_smoke: FINDING, input written to ";
    (void)!::write(2, msg, sizeof msg - 1);
    (void)!::write(2, g_crash_path, std::strlen(g_crash_path));
    (void)!::write(2, "\n", 1);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void RunOne(const Bytes& in, const std::string& crash_path) {
  std::snprintf(g_crash_path, sizeof g_crash_path, "%s", crash_path.c_str());
  // A copy with exactly in.size() bytes, so an out-of-bounds read is not hidden by capacity.
  Bytes copy(in);
  g_current = copy.data();
  g_current_size = copy.size();
  LLVMFuzzerTestOneInput(copy.data(), copy.size());
  g_current = nullptr;
  g_current_size = 0;
}

bool ReadFile(const std::filesystem::path& p, Bytes* out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

Bytes Mutate(const std::vector<Bytes>& corpus, std::mt19937_64& rng, size_t max_len) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  Bytes b = corpus[pick(corpus.size())];
  const int rounds = 1 + static_cast<int>(pick(4));
  for (int r = 0; r < rounds; ++r) {
    switch (pick(7)) {
      case 0:  // flip one bit
        if (!b.empty()) b[pick(b.size())] ^= static_cast<uint8_t>(1u << pick(8));
        break;
      case 1:  // overwrite a byte, biased to bytes that matter to text formats
        if (!b.empty()) {
          static const char kSpecial[] = "\0\n\t \"':{}[],-&*!|>#%@`\\$;";
          b[pick(b.size())] = pick(2) ? static_cast<uint8_t>(rng())
                                      : static_cast<uint8_t>(kSpecial[pick(sizeof kSpecial - 1)]);
        }
        break;
      case 2:  // insert random bytes
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)), 1 + pick(8),
                 static_cast<uint8_t>(rng()));
        break;
      case 3:  // delete a range
        if (!b.empty()) {
          size_t at = pick(b.size());
          size_t n = 1 + pick(std::min<size_t>(b.size() - at, 64));
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                  b.begin() + static_cast<std::ptrdiff_t>(at + n));
        }
        break;
      case 4:  // duplicate a range in place (nesting, repeated keys)
        if (!b.empty()) {
          size_t at = pick(b.size());
          size_t n = 1 + pick(std::min<size_t>(b.size() - at, 256));
          Bytes piece(b.begin() + static_cast<std::ptrdiff_t>(at),
                      b.begin() + static_cast<std::ptrdiff_t>(at + n));
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)), piece.begin(),
                   piece.end());
        }
        break;
      case 5: {  // splice in a range of another input
        const Bytes& o = corpus[pick(corpus.size())];
        if (!o.empty()) {
          size_t at = pick(o.size());
          size_t n = 1 + pick(o.size() - at);
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)),
                   o.begin() + static_cast<std::ptrdiff_t>(at),
                   o.begin() + static_cast<std::ptrdiff_t>(at + n));
        }
        break;
      }
      default:  // truncate
        if (!b.empty()) b.resize(pick(b.size()));
        break;
    }
  }
  if (b.size() > max_len) b.resize(max_len);
  return b;
}

int Usage() {
  std::fprintf(stderr,
               "usage: fuzz_smoke CORPUS_DIR [--runs N] [--seconds S] [--seed N] "
               "[--artifacts DIR]\n       fuzz_smoke FILE...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, OnCrash);

  std::filesystem::path first = argv[1];
  if (!std::filesystem::is_directory(first)) {  // replay mode
    for (int i = 1; i < argc; ++i) {
      Bytes in;
      if (!ReadFile(argv[i], &in)) {
        std::fprintf(stderr, "fuzz_smoke: cannot read %s\n", argv[i]);
        return 2;
      }
      RunOne(in, "");
      std::printf("replayed %s (%zu bytes): ok\n", argv[i], in.size());
    }
    return 0;
  }

  uint64_t runs = 20000, seconds = 10, seed = 1;
  std::string artifacts = ".";
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    const char* v = argv[++i];
    if (a == "--runs") {
      runs = std::strtoull(v, nullptr, 10);
    } else if (a == "--seconds") {
      seconds = std::strtoull(v, nullptr, 10);
    } else if (a == "--seed") {
      seed = std::strtoull(v, nullptr, 10);
    } else if (a == "--artifacts") {
      artifacts = v;
    } else {
      return Usage();
    }
  }

  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(first)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());  // a fixed order: the seed alone reproduces a run
  std::vector<Bytes> corpus;
  size_t max_len = 4096;
  for (const auto& p : files) {
    Bytes in;
    if (!ReadFile(p, &in)) {
      std::fprintf(stderr, "fuzz_smoke: cannot read %s\n", p.c_str());
      return 2;
    }
    RunOne(in, artifacts + "/crash-corpus-" + p.filename().string());
    max_len = std::max(max_len, 2 * in.size());
    corpus.push_back(std::move(in));
  }
  if (corpus.empty()) corpus.emplace_back();
  std::printf("corpus: %zu inputs ok\n", files.size());

  std::mt19937_64 rng(seed);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  uint64_t done = 0;
  for (; done < runs; ++done) {
    if ((done & 63) == 0 && std::chrono::steady_clock::now() >= deadline) break;
    RunOne(Mutate(corpus, rng, max_len), artifacts + "/crash-" + std::to_string(done));
  }
  std::printf("mutations: %llu runs ok (seed %llu)\n", static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(seed));
  return 0;
}
