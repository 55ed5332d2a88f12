#include "importance_file.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

// GGUF block tensors of the Llama family and their Hugging Face names.
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kBlockTensors{{
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
}};

// Reads the legacy imatrix stream field by field, refusing what runs past the end.
class LegacyReader {
 public:
  LegacyReader(std::string path, std::vector<char> bytes)
      : path_(std::move(path)), bytes_(std::move(bytes)) {}

  std::int32_t int32(const char* what) {
    std::int32_t value = 0;
    take(&value, sizeof(value), what);
    return value;
  }
  void take(void* out, std::size_t size, const char* what) {
    if (size > bytes_.size() - offset_) {
      throw FileFormatError(detail::concat("'", path_, "' ends inside ", what, " at byte ", offset_,
                                           ": not a llama.cpp imatrix file"));
    }
    std::memcpy(out, bytes_.data() + offset_, size);
    offset_ += size;
  }
  [[noreturn]] void reject(const std::string& why) const {
    throw FileFormatError(detail::concat("'", path_, "' at byte ", offset_, ": ", why));
  }

 private:
  std::string path_;
  std::vector<char> bytes_;
  std::size_t offset_ = 0;
};

std::vector<ImportanceVector> read_legacy(const std::string& path, std::vector<char> bytes) {
  LegacyReader in(path, std::move(bytes));
  const std::int32_t entries = in.int32("the entry count");
  if (entries < 1) in.reject(detail::concat("entry count ", entries, " must be >= 1"));
  std::vector<ImportanceVector> out;
  for (std::int32_t e = 0; e < entries; ++e) {
    const std::int32_t length = in.int32("a name length");
    if (length < 1 || length > 4096) in.reject(detail::concat("name length ", length));
    std::string name(static_cast<std::size_t>(length), '\0');
    in.take(name.data(), name.size(), "a name");
    const std::int32_t calls = in.int32("a call count");
    const std::int32_t count = in.int32("a value count");
    if (count < 1 || count > (1 << 24)) {
      in.reject(detail::concat("entry '", name, "' has ", count, " values"));
    }
    std::vector<float> values(static_cast<std::size_t>(count));
    in.take(values.data(), values.size() * sizeof(float), "the values");
    if (calls > 0) {
      for (float& v : values) v /= static_cast<float>(calls);  // llama-quantize's mean
    }
    out.push_back({hugging_face_name(name), std::move(name), std::move(values)});
  }
  return out;  // a trailing chunk count and dataset name, if any, are not needed
}

}  // namespace

std::string hugging_face_name(std::string_view gguf_name) {
  if (gguf_name == "output.weight") return "lm_head.weight";
  if (gguf_name == "token_embd.weight") return "model.embed_tokens.weight";
  if (!gguf_name.starts_with("blk.") || !gguf_name.ends_with(".weight")) {
    return std::string(gguf_name);
  }
  const std::string_view rest = gguf_name.substr(4, gguf_name.size() - 4 - 7);
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::string(gguf_name);
  const std::string_view layer = rest.substr(0, dot);
  for (char c : layer) {
    if (c < '0' || c > '9') return std::string(gguf_name);
  }
  for (const auto& [gguf, hugging_face] : kBlockTensors) {
    if (rest.substr(dot + 1) == gguf) {
      return detail::concat("model.layers.", layer, ".", hugging_face, ".weight");
    }
  }
  return std::string(gguf_name);
}

std::vector<ImportanceVector> read_importance(const std::string& path) {
  if (path.ends_with(".safetensors")) {
    const SafetensorsFile file = SafetensorsFile::open(path);
    std::vector<ImportanceVector> out;
    for (const auto& entry : file.header().tensors) {
      if (entry.dtype != StDType::F32 || entry.shape.size() != 1) {
        throw FileFormatError(detail::concat("--importance: tensor '", entry.name, "' has dtype ",
                                             dtype_info(entry.dtype).name, " and shape ",
                                             to_string(entry.shape), "; it must be F32 [columns]"));
      }
      const auto bytes = file.bytes(entry);
      std::vector<float> values(bytes.size() / sizeof(float));
      std::memcpy(values.data(), bytes.data(), bytes.size());
      out.push_back({entry.name, entry.name, std::move(values)});
    }
    return out;
  }
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw IoError(detail::concat("cannot open '", path, "'"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(stream)),
                          std::istreambuf_iterator<char>());
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) {
    return read_gguf_imatrix(path, bytes);
  }
  return read_legacy(path, std::move(bytes));
}

}  // namespace quantkit::io
