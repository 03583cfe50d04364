// libFuzzer target: see fuzz/harness.h for what one input goes through, fuzz/README.md to run it.
#include "fuzz/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vei::fuzz::script({reinterpret_cast<const char*>(data), size});
  return 0;
}
