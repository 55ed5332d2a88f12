// llama.cpp's GGUF imatrix files (llama-imatrix's default output): a GGUF
// file whose tensors are `<weight>.in_sum2` (F32, the summed squared inputs of
// each column, per expert) and `<weight>.counts` (F32, the tokens each expert
// saw). Read with the GGUF v2/v3 layout: header, key-value pairs (skipped by
// type), tensor infos, then the aligned data section.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <utility>

#include "importance_file.hpp"
#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

constexpr std::uint32_t kTypeUint8 = 0, kTypeInt8 = 1, kTypeUint16 = 2, kTypeInt16 = 3,
                        kTypeUint32 = 4, kTypeInt32 = 5, kTypeFloat32 = 6, kTypeBool = 7,
                        kTypeString = 8, kTypeArray = 9, kTypeUint64 = 10, kTypeInt64 = 11,
                        kTypeFloat64 = 12;
constexpr std::uint32_t kGgmlF32 = 0;

class GgufReader {
 public:
  GgufReader(const std::string& path, const std::vector<char>& bytes)
      : path_(path), bytes_(bytes) {}

  template <typename T>
  T number(const char* what) {
    T value{};
    need(sizeof(T), what);
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }
  std::string text(const char* what) {
    const auto length = number<std::uint64_t>(what);
    if (length > (1u << 20)) reject(detail::concat(what, " of ", length, " bytes"));
    need(length, what);
    std::string out(bytes_.data() + offset_, static_cast<std::size_t>(length));
    offset_ += length;
    return out;
  }
  void skip_value(std::uint32_t type, int depth = 0) {
    switch (type) {
      case kTypeUint8:
      case kTypeInt8:
      case kTypeBool:
        return skip(1);
      case kTypeUint16:
      case kTypeInt16:
        return skip(2);
      case kTypeUint32:
      case kTypeInt32:
      case kTypeFloat32:
        return skip(4);
      case kTypeUint64:
      case kTypeInt64:
      case kTypeFloat64:
        return skip(8);
      case kTypeString:
        text("a string value");
        return;
      case kTypeArray: {
        if (depth > 4) reject("arrays nested too deep");
        const auto element = number<std::uint32_t>("an array type");
        const auto count = number<std::uint64_t>("an array length");
        if (count > bytes_.size()) reject(detail::concat("an array of ", count, " elements"));
        for (std::uint64_t i = 0; i < count; ++i) skip_value(element, depth + 1);
        return;
      }
      default:
        reject(detail::concat("unknown value type ", type));
    }
  }
  std::size_t offset() const { return offset_; }
  void seek(std::size_t offset) { offset_ = offset; }
  std::size_t size() const { return bytes_.size(); }
  const char* at(std::size_t offset) const { return bytes_.data() + offset; }
  [[noreturn]] void reject(const std::string& why) const {
    throw FileFormatError(
        detail::concat("'", path_, "' (GGUF imatrix) at byte ", offset_, ": ", why));
  }

 private:
  void need(std::uint64_t size, const char* what) const {
    if (size > bytes_.size() - offset_) {
      throw FileFormatError(
          detail::concat("'", path_, "' ends inside ", what, " at byte ", offset_));
    }
  }
  void skip(std::size_t size) {
    need(size, "a value");
    offset_ += size;
  }

  const std::string& path_;
  const std::vector<char>& bytes_;
  std::size_t offset_ = 0;
};

struct TensorInfo {
  std::vector<std::uint64_t> dims;
  std::uint64_t offset = 0;
};

constexpr std::string_view kSums = ".in_sum2", kCounts = ".counts";

}  // namespace

std::vector<ImportanceVector> read_gguf_imatrix(const std::string& path,
                                                const std::vector<char>& bytes) {
  GgufReader in(path, bytes);
  in.number<std::uint32_t>("the magic");
  const auto version = in.number<std::uint32_t>("the version");
  if (version != 2 && version != 3) in.reject(detail::concat("GGUF version ", version));
  const auto tensors = in.number<std::uint64_t>("the tensor count");
  const auto keys = in.number<std::uint64_t>("the key count");
  if (tensors > 1'000'000 || keys > 1'000'000) in.reject("implausible tensor or key count");
  std::uint64_t alignment = 32;
  for (std::uint64_t k = 0; k < keys; ++k) {
    const std::string key = in.text("a key");
    const auto type = in.number<std::uint32_t>("a value type");
    if (key == "general.alignment" && type == kTypeUint32) {
      alignment = in.number<std::uint32_t>("general.alignment");
      if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        in.reject(detail::concat("general.alignment ", alignment, " is not a power of two"));
      }
    } else {
      in.skip_value(type);
    }
  }
  std::map<std::string, std::pair<const TensorInfo*, const TensorInfo*>> entries;
  std::map<std::string, TensorInfo> infos;
  for (std::uint64_t t = 0; t < tensors; ++t) {
    const std::string name = in.text("a tensor name");
    TensorInfo info;
    const auto dims = in.number<std::uint32_t>("a dimension count");
    if (dims < 1 || dims > 4) in.reject(detail::concat("tensor '", name, "' has ", dims, " dims"));
    for (std::uint32_t d = 0; d < dims; ++d) info.dims.push_back(in.number<std::uint64_t>("a dim"));
    const auto type = in.number<std::uint32_t>("a tensor type");
    info.offset = in.number<std::uint64_t>("a tensor offset");
    if (type != kGgmlF32) in.reject(detail::concat("tensor '", name, "' is not F32"));
    if (infos.count(name) != 0) in.reject(detail::concat("tensor '", name, "' appears twice"));
    const auto& stored = infos[name] = info;
    if (name.ends_with(kSums)) {
      entries[name.substr(0, name.size() - kSums.size())].first = &stored;
    } else if (name.ends_with(kCounts)) {
      entries[name.substr(0, name.size() - kCounts.size())].second = &stored;
    }
  }
  const std::uint64_t data = (in.offset() + alignment - 1) / alignment * alignment;
  const auto floats = [&](const std::string& name, const TensorInfo& info) {
    std::uint64_t n = 1;
    for (const auto d : info.dims) {
      if (d != 0 && n > in.size() / d)
        in.reject(detail::concat("tensor '", name, "' is too large"));
      n *= d;
    }
    if (info.offset > in.size() || data > in.size() - info.offset ||
        n > (in.size() - data - info.offset) / 4) {
      in.reject(detail::concat("tensor '", name, "' lies past the end of the file"));
    }
    if (n == 0) in.reject(detail::concat("tensor '", name, "' is empty"));
    std::vector<float> values(static_cast<std::size_t>(n));
    std::memcpy(values.data(), in.at(data + info.offset), values.size() * sizeof(float));
    return values;
  };
  std::vector<ImportanceVector> out;
  for (const auto& [name, pair] : entries) {
    if (pair.first == nullptr || pair.second == nullptr) {
      in.reject(detail::concat("'", name, "' has ",
                               pair.first ? "sums but no counts" : "counts but no sums"));
    }
    const std::vector<float> sums = floats(name + std::string(kSums), *pair.first);
    const std::vector<float> counts = floats(name + std::string(kCounts), *pair.second);
    if (counts.size() != 1) {
      in.reject(detail::concat("'", name, "' holds ", counts.size(),
                               " experts; per-expert (MoE) importance is not read"));
    }
    std::vector<float> values = sums;
    for (float& v : values) v = counts[0] > 0 ? v / counts[0] : 1.0f;  // llama-quantize's mean
    out.push_back({hugging_face_name(name), name, std::move(values)});
  }
  if (out.empty()) in.reject("no '<weight>.in_sum2' / '<weight>.counts' tensor pairs");
  return out;
}

}  // namespace quantkit::io
