// libFuzzer target: any byte string is either a llama.cpp GGUF imatrix the
// checkpoint tool reads or a FileFormatError; never a crash, leak, hang or
// sanitizer report (the header's counts and offsets come from the file).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "importance_file.hpp"
#include "quantkit/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<char> bytes(data, data + size);
  try {
    for (const auto& vector : quantkit::io::read_gguf_imatrix("fuzz.gguf", bytes)) {
      if (vector.values.size() * sizeof(float) > size) __builtin_trap();  // read past the input
    }
  } catch (const quantkit::io::FileFormatError&) {
  }
  return 0;
}
