#include <cstdio>
#include <map>

#include "commands.hpp"
#include "quantkit/io/stored_weights.hpp"

namespace quantkit::cli {

int run_inspect(const std::string& path) {
  const io::Checkpoint checkpoint = io::Checkpoint::open(path);
  std::map<std::string, std::uint64_t> bytes_by_dtype;
  std::size_t count = 0;
  for (std::size_t i = 0; i < checkpoint.shards().size(); ++i) {
    const auto& shard = checkpoint.shards()[i];
    std::printf("%s (%s, %zu tensors)\n", checkpoint.shard_names()[i].c_str(),
                format_bytes(static_cast<double>(shard.file_size())).c_str(),
                shard.header().tensors.size());
    std::printf("  %-52s %-8s %-18s %s\n", "tensor", "dtype", "shape", "bytes");
    for (const auto& entry : shard.header().tensors) {
      const std::string dtype(io::dtype_info(entry.dtype).name);
      std::printf("  %-52s %-8s %-18s %s\n", entry.name.c_str(), dtype.c_str(),
                  to_string(entry.shape).c_str(),
                  format_bytes(static_cast<double>(entry.nbytes())).c_str());
      bytes_by_dtype[dtype] += entry.nbytes();
      ++count;
    }
    const auto weights = io::stored_weights(shard);
    if (!weights.empty()) {
      std::printf("  quantized weights (quantkit, compressed-tensors layout):\n");
      for (const auto& weight : weights) {
        std::printf("    %-50s %-16s %s\n", weight.name.c_str(), weight.scheme->name.c_str(),
                    to_string(weight.shape).c_str());
      }
    } else if (shard.header().metadata.count("quantization_config") != 0) {
      std::printf("  quantization_config present (not written by quantkit)\n");
    } else {
      std::printf("  no quantization detected\n");
    }
  }
  std::printf("total: %zu tensors, %s", count,
              format_bytes(static_cast<double>(checkpoint.total_bytes())).c_str());
  for (const auto& [dtype, bytes] : bytes_by_dtype) {
    std::printf("; %s %s", dtype.c_str(), format_bytes(static_cast<double>(bytes)).c_str());
  }
  std::printf("\n");
  return 0;
}

}  // namespace quantkit::cli
