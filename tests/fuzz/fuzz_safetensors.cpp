// libFuzzer target: any byte string is either a valid safetensors file or a
// FileFormatError; never a crash, leak, hang or sanitizer report.
#include <cstddef>
#include <cstdint>

#include "quantkit/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto header = quantkit::io::parse_safetensors({data, size});
    for (const auto& entry : header.tensors) {
      // Accepted offsets must lie inside the input.
      if (header.data_start + entry.end > size) __builtin_trap();
    }
  } catch (const quantkit::io::FileFormatError&) {
  }
  return 0;
}
