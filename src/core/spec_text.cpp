// QuantSpec identity: the lossless text form, its parser, and the first field
// in which two specs differ.
#include <charconv>
#include <cstdio>
#include <vector>

#include "quantkit/error.hpp"
#include "quantkit/quant_spec.hpp"

namespace quantkit {
namespace {

constexpr std::string_view kUnset = "-";

std::string granularity_text(const Granularity& g) {
  switch (g.kind()) {
    case Granularity::Kind::per_tensor:
      return std::string(Granularity::kind_name(g.kind()));
    case Granularity::Kind::per_axis:
      return detail::concat("per_axis(", g.axis(), ")");
    case Granularity::Kind::per_group:
      return detail::concat("per_group(", g.group_size(), ",", g.axis(), ")");
    case Granularity::Kind::per_block: {
      std::string dims;
      for (std::int64_t d : g.block_shape()) dims += detail::concat(dims.empty() ? "" : ",", d);
      return "per_block(" + dims + ")";
    }
    case Granularity::Kind::per_token:
      return std::string(Granularity::kind_name(g.kind()));
  }
  return "?";
}

[[noreturn]] void reject(std::string_view text, const std::string& why) {
  throw Error(detail::concat("spec text '", text.substr(0, 200), "': ", why));
}

std::int64_t parse_integer(std::string_view text, std::string_view whole) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    reject(whole, detail::concat("'", text, "' is not an integer"));
  }
  return value;
}

std::vector<std::int64_t> parse_integers(std::string_view list, std::string_view whole) {
  std::vector<std::int64_t> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    out.push_back(parse_integer(list.substr(0, comma), whole));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return out;
}

Granularity parse_granularity(std::string_view text, std::string_view whole) {
  using Kind = Granularity::Kind;
  if (text == Granularity::kind_name(Kind::per_tensor)) return Granularity::per_tensor();
  if (text == Granularity::kind_name(Kind::per_token)) return Granularity::per_token();
  const std::size_t open = text.find('(');
  if (open == std::string_view::npos || !text.ends_with(")")) {
    reject(whole, detail::concat("granularity '", text, "' is unknown"));
  }
  const std::string_view kind = text.substr(0, open);
  const auto args = parse_integers(text.substr(open + 1, text.size() - open - 2), whole);
  if (kind == Granularity::kind_name(Kind::per_axis) && args.size() == 1) {
    return Granularity::per_axis(args[0]);
  }
  if (kind == Granularity::kind_name(Kind::per_group) && args.size() == 2) {
    return Granularity::per_group(args[0], args[1]);
  }
  if (kind == Granularity::kind_name(Kind::per_block) && !args.empty()) {
    return Granularity::per_block(Shape(args));
  }
  reject(whole, detail::concat("granularity '", text, "' is unknown"));
}

QuantDType parse_dtype(std::string_view text, std::string_view whole) {
  const std::size_t open = text.find('[');
  if (open == std::string_view::npos) return QuantDType::from_name(text);
  if (!text.ends_with("]")) reject(whole, detail::concat("dtype '", text, "' is unknown"));
  const auto range = parse_integers(text.substr(open + 1, text.size() - open - 2), whole);
  if (range.size() != 2) reject(whole, detail::concat("dtype '", text, "' needs [min,max]"));
  return QuantDType::from_name(text.substr(0, open)).with_range(range[0], range[1]);
}

template <typename T, typename Parse>
std::optional<T> parse_optional(std::string_view text, Parse parse) {
  if (text == kUnset) return std::nullopt;
  return parse(text);
}

}  // namespace

std::string QuantSpec::to_text() const {
  char eps_text[32] = "-";
  if (eps) std::snprintf(eps_text, sizeof eps_text, "%.17g", *eps);
  return detail::concat("dtype=", dtype.name(), ";mapping=", name(mapping),
                        ";granularity=", granularity_text(granularity), ";zero_point_domain=",
                        zero_point_domain ? name(*zero_point_domain) : kUnset, ";eps=", eps_text,
                        ";scale_dtype=", scale_dtype ? name(*scale_dtype) : kUnset,
                        ";zero_point_dtype=", zero_point_dtype ? name(*zero_point_dtype) : kUnset,
                        ";e8m0_rounding=", name(e8m0_rounding),
                        global_scale ? std::string_view(";global_scale=true") : "",
                        scale_search != ScaleSearch::none ? ";scale_search=" : "",
                        scale_search != ScaleSearch::none ? name(scale_search) : "");
}

QuantSpec QuantSpec::from_text(std::string_view text) {
  // The required keys in order, then the optional ones (each at most once, in
  // this order), so texts written before an optional key existed still parse.
  static constexpr std::string_view kRequiredKeys[] = {
      "dtype", "mapping",     "granularity",      "zero_point_domain",
      "eps",   "scale_dtype", "zero_point_dtype", "e8m0_rounding"};
  static constexpr std::string_view kOptionalKeys[] = {"global_scale", "scale_search"};
  constexpr std::string_view kExpected =
      "expected the fields dtype, mapping, granularity, zero_point_domain, eps, scale_dtype, "
      "zero_point_dtype, e8m0_rounding (then optionally global_scale=true, scale_search=...)";
  std::vector<std::string_view> items;
  for (std::string_view rest = text;;) {
    const std::size_t end = rest.find(';');
    items.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest = rest.substr(end + 1);
  }
  if (items.size() < std::size(kRequiredKeys)) reject(text, std::string(kExpected));
  auto value_of = [&](std::size_t i, std::string_view key) {
    const std::size_t equals = items[i].find('=');
    if (equals == std::string_view::npos || items[i].substr(0, equals) != key) {
      reject(text, detail::concat("field ", i + 1, " must be ", key, "=..."));
    }
    return items[i].substr(equals + 1);
  };
  std::string_view values[std::size(kRequiredKeys)];
  for (std::size_t i = 0; i < std::size(kRequiredKeys); ++i)
    values[i] = value_of(i, kRequiredKeys[i]);
  std::string_view optional[std::size(kOptionalKeys)];
  std::size_t next_optional = 0;
  for (std::size_t i = std::size(kRequiredKeys); i < items.size(); ++i) {
    const std::string_view key = items[i].substr(0, items[i].find('='));
    while (next_optional < std::size(kOptionalKeys) && kOptionalKeys[next_optional] != key) {
      ++next_optional;
    }
    if (next_optional == std::size(kOptionalKeys)) reject(text, std::string(kExpected));
    optional[next_optional] = value_of(i, key);
    ++next_optional;
  }
  QuantSpec spec;
  spec.dtype = parse_dtype(values[0], text);
  spec.mapping = mapping_from_name(values[1]);
  spec.granularity = parse_granularity(values[2], text);
  spec.zero_point_domain = parse_optional<ZeroPointDomain>(values[3], zero_point_domain_from_name);
  spec.eps = parse_optional<double>(values[4], [&](std::string_view v) {
    double value = 0;
    const auto [end, error] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (error != std::errc() || end != v.data() + v.size()) {
      reject(text, detail::concat("eps '", v, "' is not a number"));
    }
    return value;
  });
  spec.scale_dtype = parse_optional<ScaleDType>(values[5], scale_dtype_from_name);
  spec.zero_point_dtype = parse_optional<ScalarType>(values[6], scalar_type_from_name);
  try {
    spec.e8m0_rounding = e8m0_rounding_from_name(values[7]);
  } catch (const Error& e) {
    reject(text, e.what());
  }
  if (!optional[0].empty()) {
    if (optional[0] != "true") {
      reject(text, detail::concat("global_scale '", optional[0],
                                  "' must be true (leave the field out when false)"));
    }
    spec.global_scale = true;
  }
  if (!optional[1].empty()) {
    try {
      spec.scale_search = scale_search_from_name(optional[1]);
    } catch (const Error& e) {
      reject(text, e.what());
    }
  }
  spec.validate();
  return spec;
}

std::string_view first_difference(const QuantSpec& a, const QuantSpec& b) {
  if (!(a.dtype == b.dtype)) return "dtype";
  if (a.mapping != b.mapping) return "mapping";
  if (!(a.granularity == b.granularity)) return "granularity";
  if (a.zero_point_domain != b.zero_point_domain) return "zero_point_domain";
  if (a.eps != b.eps) return "eps";
  if (a.scale_dtype != b.scale_dtype) return "scale_dtype";
  if (a.zero_point_dtype != b.zero_point_dtype) return "zero_point_dtype";
  if (a.e8m0_rounding != b.e8m0_rounding) return "e8m0_rounding";
  if (a.global_scale != b.global_scale) return "global_scale";
  if (a.scale_search != b.scale_search) return "scale_search";
  return {};
}

}  // namespace quantkit
