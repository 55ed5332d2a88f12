// libFuzzer target over quantized checkpoints (what `inspect` and `report`
// read): any byte string either yields quantized weights that load and
// dequantize, or is refused with a quantkit Error; never a crash, leak, hang
// or sanitizer report.
#include <cstddef>
#include <cstdint>

#include "quantkit/io/stored_weights.hpp"
#include "quantkit/ops.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace quantkit;
  try {
    const auto file = io::SafetensorsFile::view({data, size});
    for (const auto& weight : io::stored_weights(file)) {
      for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16}) {
        const QuantizedTensor q = io::load_quantized(file, weight, dtype);
        const Tensor restored = dequantize(q, dtype);
        if (restored.shape() != weight.shape) __builtin_trap();
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
