// Streaming a planned quantization: row blocks from the memory map into the
// output writer, so memory stays bounded whatever the checkpoint size.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "compressed_tensors.hpp"
#include "quantkit/io/checkpoint.hpp"
#include "quantkit/io/output_target.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit::io {
namespace fs = std::filesystem;
namespace {

// Input bytes per block: enough for both threads to stream, small enough that
// the buffers stay a few tens of MB.
constexpr std::uint64_t kBlockBytes = 16u << 20;

class ProgressCounter {
 public:
  ProgressCounter(const Progress& progress, std::uint64_t total)
      : progress_(progress), total_(total) {}
  void advance(std::uint64_t bytes) {
    done_ += bytes;
    if (progress_) progress_(done_, total_);
  }

 private:
  const Progress& progress_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
};

void copy_tensor(const SafetensorsFile& file, const TensorEntry& entry, SafetensorsWriter& writer,
                 ProgressCounter& counter) {
  const auto bytes = file.bytes(entry);
  for (std::uint64_t offset = 0; offset < bytes.size(); offset += kBlockBytes) {
    const std::uint64_t length = std::min<std::uint64_t>(kBlockBytes, bytes.size() - offset);
    writer.write(bytes.subspan(offset, length));
    file.release(entry, offset, length);
    counter.advance(length);
  }
}

void quantize_tensor(const SafetensorsFile& file, const TensorPlan& plan, SafetensorsWriter& writer,
                     ProgressCounter& counter) {
  const TensorEntry& entry = *plan.entry;
  const Scheme& scheme = *plan.scheme;
  const ScalarType dtype = *to_scalar_type(entry.dtype);
  const std::int64_t rows = entry.shape[0];
  const std::int64_t columns = entry.shape[1];
  const std::uint64_t row_bytes = static_cast<std::uint64_t>(columns) * element_size(dtype);
  const std::int64_t block_rows =
      std::clamp<std::int64_t>(static_cast<std::int64_t>(kBlockBytes / row_bytes), 1, rows);
  const auto bytes = file.bytes(entry);
  const bool aligned = reinterpret_cast<std::uintptr_t>(bytes.data()) % element_size(dtype) == 0;

  // A misaligned tensor (the format allows any offset) is copied block by
  // block into aligned storage before the kernels see it.
  Tensor staging;
  auto view_rows = [&](std::int64_t first, std::int64_t count) {
    const std::uint8_t* data = bytes.data() + static_cast<std::uint64_t>(first) * row_bytes;
    if (aligned) return TensorView(data, dtype, {count, columns});
    staging = Tensor::uninitialized(dtype, {count, columns});
    std::memcpy(staging.raw_data(), data, static_cast<std::size_t>(count) * row_bytes);
    return staging.view();
  };

  std::optional<QParams> whole;  // per-tensor scales need the whole tensor first
  if (scheme.spec.granularity.kind() == Granularity::Kind::per_tensor) {
    whole = choose_qparams(view_rows(0, rows), scheme.spec);
    staging = Tensor();
    file.release(entry, 0, entry.nbytes());
  }
  // Two-level scales (NVFP4) aim the whole tensor's amax at the largest block
  // scale: a first pass finds it, then every row block shares its g.
  std::optional<float> global_scale;
  if (scheme.spec.global_scale) {
    float amax = 0;
    for (std::int64_t first = 0; first < rows; first += block_rows) {
      const std::int64_t count = std::min(block_rows, rows - first);
      const TensorView block = view_rows(first, count);
      const BlockRange range = block_range(block, Granularity::per_tensor());
      amax = std::max(
          {amax, -static_cast<float>(range.min.get(0)), static_cast<float>(range.max.get(0))});
      if (!std::isfinite(amax)) choose_qparams(block, scheme.spec);  // names the bad element
      file.release(entry, static_cast<std::uint64_t>(first) * row_bytes,
                   static_cast<std::uint64_t>(count) * row_bytes);
    }
    global_scale = global_scale_from_amax(amax, scheme.spec);
  }
  std::vector<std::uint8_t> codes, scales;
  std::vector<std::int32_t> zero_points;
  const TensorView importance(plan.importance.data(), ScalarType::float32,
                              {static_cast<std::int64_t>(plan.importance.size())});
  for (std::int64_t first = 0; first < rows; first += block_rows) {
    const std::int64_t count = std::min(block_rows, rows - first);
    const TensorView block = view_rows(first, count);
    const QuantizedTensor q =
        whole          ? quantize(block, *whole)
        : global_scale ? quantize(block, choose_qparams(block, scheme.spec, *global_scale))
        : !plan.importance.empty() ? quantize(block, choose_qparams(block, scheme.spec, importance))
                                   : quantize(block, scheme.spec);
    codes.clear();
    ct::append_codes(scheme, q, columns, codes);
    writer.write(codes);
    if (!whole) ct::append_scales(scheme, q.qparams(), scales);
    if (ct::has_zero_point(scheme)) {
      const Tensor& zp = q.qparams().zero_point;
      zero_points.insert(zero_points.end(), zp.data<std::int32_t>(),
                         zp.data<std::int32_t>() + zp.numel());
    }
    file.release(entry, static_cast<std::uint64_t>(first) * row_bytes,
                 static_cast<std::uint64_t>(count) * row_bytes);
    counter.advance(static_cast<std::uint64_t>(count) * row_bytes);
  }
  if (whole) ct::append_scales(scheme, *whole, scales);
  writer.write(scales);
  std::vector<std::uint8_t> trailing;
  // compressed-tensors stores the divisor 1 / g (exact: g is a power of two).
  const float stored_global_scale = global_scale ? 1.0f / *global_scale : 1.0f;
  ct::append_trailing_parts(scheme, zero_points, stored_global_scale, rows, columns, trailing);
  writer.write(trailing);
}

void write_shard(const SafetensorsFile& file, const ShardPlan& plan, const std::string& path,
                 const std::map<std::string, std::string>& metadata, ProgressCounter& counter) {
  std::vector<TensorDecl> declared;
  for (const auto& tensor : plan.tensors) {
    declared.insert(declared.end(), tensor.outputs.begin(), tensor.outputs.end());
  }
  SafetensorsWriter writer(path, std::move(declared), metadata);
  for (const auto& tensor : plan.tensors) {
    counter.advance(0);  // lets the caller cancel between tensors
    if (tensor.scheme == nullptr) {
      copy_tensor(file, *tensor.entry, writer, counter);
      continue;
    }
    try {
      quantize_tensor(file, tensor, writer, counter);
    } catch (const IoError&) {
      throw;
    } catch (const Error& error) {
      throw Error(detail::concat("tensor '", tensor.entry->name, "': ", error.what()));
    }
  }
  writer.commit();
}

nlohmann::ordered_json read_config(const fs::path& path) {
  if (!fs::exists(path)) return nlohmann::ordered_json::object();
  nlohmann::ordered_json config;
  try {
    config = nlohmann::ordered_json::parse(std::ifstream(path));
  } catch (const nlohmann::json::exception& error) {
    throw FileFormatError(
        detail::concat("'", path.string(), "' is not valid JSON: ", error.what()));
  }
  if (!config.is_object()) {
    throw FileFormatError(
        detail::concat("'", path.string(), "' holds JSON ", config.type_name(), ", not an object"));
  }
  return config;
}

// The folder's other files (tokenizer, generation config, sub-folders) come
// along; symbolic links are copied as links, never followed.
void copy_other_files(const fs::path& input, const fs::path& folder, ProgressCounter& counter) {
  for (const auto& item : fs::directory_iterator(input)) {
    const std::string file = item.path().filename().string();
    if (file.ends_with(".safetensors") || file.ends_with(".safetensors.index.json") ||
        file == "config.json")
      continue;
    fs::copy(item.path(), folder / file,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    counter.advance(0);
  }
}

void write_folder(const Checkpoint& input, const QuantizationPlan& plan, const fs::path& folder,
                  const std::map<std::string, std::string>& metadata, ProgressCounter& counter) {
  // Read before any shard is written, so a broken config fails the run early.
  auto config = read_config(fs::path(input.path()) / "config.json");
  copy_other_files(input.path(), folder, counter);
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < input.shards().size(); ++i) {
    write_shard(input.shards()[i], plan.shards[i], (folder / input.shard_names()[i]).string(),
                metadata, counter);
    for (const auto& tensor : plan.shards[i].tensors) {
      for (const auto& output : tensor.outputs) weight_map[output.name] = input.shard_names()[i];
    }
  }
  if (input.has_index() || input.shards().size() > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", plan.output_bytes}};
    index["weight_map"] = weight_map;
    write_file_atomically(folder / "model.safetensors.index.json", index.dump(2));
  }
  config["quantization_config"] = nlohmann::ordered_json::parse(plan.quantization_config);
  write_file_atomically(folder / "config.json", config.dump(2));
}

}  // namespace

void run_quantization(const Checkpoint& input, const QuantizationPlan& plan,
                      const std::string& output, bool replace, const Progress& progress) {
  QK_CHECK(plan.shards.size() == input.shards().size(), "the plan was made for another checkpoint");
  const std::map<std::string, std::string> metadata{
      {"format", "pt"}, {"quantization_config", plan.quantization_config}};
  ProgressCounter counter(progress, plan.input_bytes);
  const fs::path target = check_output_path(
      output, input.is_folder() ? OutputKind::folder : OutputKind::file, input.path(), replace);
  if (!input.is_folder()) {
    write_shard(input.shards()[0], plan.shards[0], target.string(), metadata, counter);
    return;
  }
  StagingFolder staging(target);
  write_folder(input, plan, staging.path(), metadata, counter);
  staging.publish();
}

}  // namespace quantkit::io
