// A fuzz target with a planted bug, for smoke_selftest.sh: aborts on any input that starts with
// "FL!" (the corpus holds only "FL"). The smoke driver must find it by mutation, write the input
// out and die with the signal; replaying the written input must die the same way.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 3 && std::memcmp(data, "FL!", 3) == 0) std::abort();
  return 0;
}
