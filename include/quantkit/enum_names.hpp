#pragma once
// The one enum <-> text helper. Each enum keeps one table of its spellings
// next to its definition; name(), *_from_name(), the Python bindings, the CLI
// and saved states all read that table, so a value is spelled one way
// everywhere. A table may list aliases after the canonical spelling (older
// spellings that still parse); name() always gives the first.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "quantkit/error.hpp"

namespace quantkit {

template <typename Enum>
struct EnumName {
  Enum value;
  std::string_view text;
};

template <typename Enum, std::size_t N>
using EnumNames = std::array<EnumName<Enum>, N>;

/// The canonical spelling of `value` ("?" for a value the table lacks).
template <typename Enum, std::size_t N>
constexpr std::string_view name_in(const EnumNames<Enum, N>& table, Enum value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.text;
  }
  return "?";
}

/// Canonical spellings, in table order, without aliases.
template <typename Enum, std::size_t N>
std::vector<std::string_view> canonical_names(const EnumNames<Enum, N>& table) {
  std::vector<std::string_view> out;
  for (const auto& entry : table) {
    if (name_in(table, entry.value) == entry.text) out.push_back(entry.text);
  }
  return out;
}

/// The value spelled `text`; throws Error "<what> '<text>' is unknown;
/// expected one of a, b, c" otherwise.
template <typename Enum, std::size_t N>
Enum value_in(const EnumNames<Enum, N>& table, std::string_view text, std::string_view what) {
  for (const auto& entry : table) {
    if (entry.text == text) return entry.value;
  }
  std::string choices;
  for (const auto name : canonical_names(table)) {
    if (!choices.empty()) choices.append(", ");
    choices.append(name);
  }
  throw Error(detail::concat(what, " '", text, "' is unknown; expected one of ", choices));
}

}  // namespace quantkit
