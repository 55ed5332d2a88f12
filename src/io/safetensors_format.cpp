// Parsing and validation of the safetensors header (no file access here, so
// the fuzz target drives exactly this code).
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

constexpr std::array<StDTypeInfo, 22> kDTypes{{
    {StDType::BOOL, "BOOL", 8},
    {StDType::F4, "F4", 4},
    {StDType::F6_E2M3, "F6_E2M3", 6},
    {StDType::F6_E3M2, "F6_E3M2", 6},
    {StDType::U8, "U8", 8},
    {StDType::I8, "I8", 8},
    {StDType::F8_E5M2, "F8_E5M2", 8},
    {StDType::F8_E4M3, "F8_E4M3", 8},
    {StDType::F8_E8M0, "F8_E8M0", 8},
    {StDType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {StDType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {StDType::I16, "I16", 16},
    {StDType::U16, "U16", 16},
    {StDType::F16, "F16", 16},
    {StDType::BF16, "BF16", 16},
    {StDType::I32, "I32", 32},
    {StDType::U32, "U32", 32},
    {StDType::F32, "F32", 32},
    {StDType::C64, "C64", 64},
    {StDType::F64, "F64", 64},
    {StDType::I64, "I64", 64},
    {StDType::U64, "U64", 64},
}};

constexpr std::uint64_t kMaxHeaderLength = 100'000'000;
// Far beyond any real tensor name (a few hundred bytes at most); bounded so
// that name matching (--include, --override) runs in bounded time and stack.
constexpr std::size_t kMaxNameLength = 4096;

template <typename... Parts>
[[noreturn]] void reject(const Parts&... parts) {
  throw FileFormatError(detail::concat("invalid safetensors file: ", parts...));
}

// Offset of the first byte that breaks UTF-8 (overlongs, surrogates and code
// points past U+10FFFF included), or npos.
std::size_t first_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    int extra = 0;
    std::uint32_t code = 0;
    if (byte < 0x80) {
      ++i;
      continue;
    } else if ((byte & 0xE0) == 0xC0) {
      extra = 1, code = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      extra = 2, code = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      extra = 3, code = byte & 0x07;
    } else {
      return i;
    }
    if (i + extra >= text.size()) return i;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return i;
      code = (code << 6) | (next & 0x3F);
    }
    constexpr std::array<std::uint32_t, 4> kSmallest{0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += extra + 1;
  }
  return std::string_view::npos;
}

std::uint64_t checked_numel_bits(const Shape& shape, int bits, const std::string& name) {
  std::uint64_t count = 1;
  for (std::int64_t dim : shape) {
    const auto d = static_cast<std::uint64_t>(dim);
    if (d != 0 && count > std::numeric_limits<std::uint64_t>::max() / 64 / d) {
      reject("tensor '", name, "' has a shape whose element count overflows");
    }
    count *= d;
  }
  return count * static_cast<std::uint64_t>(bits);
}

void check_name(const std::string& name) {
  if (name.empty()) reject("a tensor has an empty name");
  if (name.size() > kMaxNameLength) {
    reject("tensor name '", name.substr(0, 64), "...' is ", name.size(),
           " bytes long; the limit is ", kMaxNameLength);
  }
  if (name.find('\0') != std::string::npos) {
    reject("tensor name '", name.substr(0, name.find('\0')), "\\u0000...' holds a NUL character");
  }
}

TensorEntry parse_entry(const std::string& name, const nlohmann::json& value) {
  check_name(name);
  if (!value.is_object()) reject("entry '", name, "' is not a JSON object");
  for (const auto& [key, unused] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      reject("tensor '", name, "' has unknown field '", key, "'");
    }
  }
  TensorEntry entry;
  entry.name = name;
  const auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string())
    reject("tensor '", name, "' has no dtype string");
  const auto parsed = safetensors_dtype_from_name(dtype->get<std::string>());
  if (!parsed) reject("tensor '", name, "' has unknown dtype '", dtype->get<std::string>(), "'");
  entry.dtype = *parsed;
  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) reject("tensor '", name, "' has no shape array");
  for (const auto& dim : *shape) {
    if (!dim.is_number_unsigned() ||
        dim.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      reject("tensor '", name,
             "' has a shape entry that is not a non-negative integer: ", dim.dump());
    }
    entry.shape.push_back(dim.get<std::int64_t>());
  }
  const auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    reject("tensor '", name, "' needs data_offsets [begin, end] of two non-negative integers");
  }
  entry.begin = (*offsets)[0].get<std::uint64_t>();
  entry.end = (*offsets)[1].get<std::uint64_t>();
  if (entry.end < entry.begin) {
    reject("tensor '", name, "' has data_offsets [", entry.begin, ", ", entry.end,
           "] with end before begin");
  }
  const std::uint64_t bits = checked_numel_bits(entry.shape, dtype_info(entry.dtype).bits, name);
  if (bits % 8 != 0) {
    reject("tensor '", name, "' holds ", bits, " bits of ", dtype_info(entry.dtype).name,
           ", not a whole number of bytes");
  }
  if (entry.nbytes() != bits / 8) {
    reject("tensor '", name, "' of dtype ", dtype_info(entry.dtype).name, " and shape ",
           to_string(entry.shape), " needs ", bits / 8, " bytes but data_offsets [", entry.begin,
           ", ", entry.end, "] hold ", entry.nbytes());
  }
  return entry;
}

// nlohmann keeps the last of duplicate keys silently, so a SAX pass finds
// them in the top-level object first. (Its callback parser would too, but it
// rescans the parent object at every nested object's end: quadratic in the
// number of tensors.)
class DuplicateKeyFinder {
 public:
  using json = nlohmann::json;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return ++depth_, true; }
  bool end_object() { return --depth_, true; }
  bool start_array(std::size_t) { return ++depth_, true; }
  bool end_array() { return --depth_, true; }
  bool key(json::string_t& key) {
    if (depth_ == 1 && !seen_.insert(key).second) reject("the header names '", key, "' twice");
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) {
    throw error;
  }

 private:
  int depth_ = 0;
  std::unordered_set<std::string> seen_;
};

nlohmann::json parse_rejecting_duplicate_keys(std::string_view text) {
  DuplicateKeyFinder finder;
  nlohmann::json::sax_parse(text, &finder);
  return nlohmann::json::parse(text);
}

}  // namespace

std::span<const StDTypeInfo> safetensors_dtypes() {
  return kDTypes;
}

const StDTypeInfo& dtype_info(StDType dtype) {
  return kDTypes[static_cast<std::size_t>(dtype)];
}

std::optional<StDType> safetensors_dtype_from_name(std::string_view name) {
  for (const auto& row : kDTypes) {
    if (row.name == name) return row.dtype;
  }
  return std::nullopt;
}

std::optional<ScalarType> to_scalar_type(StDType dtype) {
  switch (dtype) {
    case StDType::F32:
      return ScalarType::float32;
    case StDType::F64:
      return ScalarType::float64;
    case StDType::F16:
      return ScalarType::float16;
    case StDType::BF16:
      return ScalarType::bfloat16;
    case StDType::I8:
      return ScalarType::int8;
    case StDType::U8:
      return ScalarType::uint8;
    case StDType::I16:
      return ScalarType::int16;
    case StDType::I32:
      return ScalarType::int32;
    case StDType::I64:
      return ScalarType::int64;
    default:
      return std::nullopt;
  }
}

bool is_float_input(StDType dtype) {
  return dtype == StDType::F32 || dtype == StDType::BF16 || dtype == StDType::F16;
}

StDType from_scalar_type(ScalarType dtype) {
  for (const auto& row : kDTypes) {
    if (to_scalar_type(row.dtype) == dtype) return row.dtype;
  }
  throw Error(detail::concat("dtype ", name(dtype), " has no safetensors dtype"));
}

const TensorEntry* SafetensorsHeader::find(std::string_view name) const {
  const auto found = index.find(std::string(name));
  return found == index.end() ? nullptr : &tensors[found->second];
}

std::uint64_t TensorDecl::nbytes() const {
  const std::uint64_t bits = checked_numel_bits(shape, dtype_info(dtype).bits, name);
  QK_CHECK(bits % 8 == 0, "tensor '", name, "' of shape ", to_string(shape), " and dtype ",
           dtype_info(dtype).name, " is not a whole number of bytes");
  return bits / 8;
}

SafetensorsHeader parse_safetensors(std::span<const std::uint8_t> file) {
  if (file.size() < 8) {
    reject("the file is ", file.size(), " bytes, too short for the 8-byte header length");
  }
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | file[static_cast<std::size_t>(i)];
  if (length > kMaxHeaderLength) {
    reject("header length ", length, " exceeds the limit of ", kMaxHeaderLength, " bytes");
  }
  if (8 + length > file.size()) {
    reject("header length ", length, " runs past the end of the file (", file.size(), " bytes)");
  }
  const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), length);
  if (text.empty() || text.front() != '{') reject("the header does not start with '{'");
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    reject("the header holds a NUL byte at byte ", 8 + nul,
           " of the file (the format pads with spaces)");
  }
  if (const std::size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
    reject("the header is not valid UTF-8 (byte ", 8 + bad, " of the file)");
  }
  nlohmann::json json;
  try {
    json = parse_rejecting_duplicate_keys(text);
  } catch (const nlohmann::json::exception& error) {
    reject("the header is not valid JSON: ", error.what());
  }
  if (!json.is_object()) reject("the header is not a JSON object");

  SafetensorsHeader header;
  header.data_start = 8 + length;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) reject("__metadata__ is not a JSON object");
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string())
          reject("__metadata__ value of '", meta_key, "' is not a string");
        header.metadata[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(parse_entry(key, value));
  }
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorEntry& a, const TensorEntry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  const std::uint64_t buffer = file.size() - header.data_start;
  std::uint64_t cursor = 0;
  const TensorEntry* previous = nullptr;
  for (const auto& entry : header.tensors) {
    if (entry.end > buffer) {
      reject("tensor '", entry.name, "' data_offsets [", entry.begin, ", ", entry.end,
             "] run past the end of the data buffer (", buffer, " bytes)");
    }
    if (entry.begin < cursor) {
      reject("tensors '", previous->name, "' [", previous->begin, ", ", previous->end, ") and '",
             entry.name, "' [", entry.begin, ", ", entry.end, ") overlap");
    }
    if (entry.begin > cursor) {
      reject("bytes [", cursor, ", ", entry.begin, ") of the data buffer before tensor '",
             entry.name, "' belong to no tensor");
    }
    cursor = entry.end;
    previous = &entry;
  }
  if (cursor != buffer) {
    reject(buffer - cursor, " trailing bytes after the last tensor (the data buffer is ", buffer,
           " bytes, tensors end at ", cursor, ")");
  }
  header.index.reserve(header.tensors.size());
  for (std::size_t i = 0; i < header.tensors.size(); ++i) {
    header.index.emplace(header.tensors[i].name, i);
  }
  return header;
}

}  // namespace quantkit::io
