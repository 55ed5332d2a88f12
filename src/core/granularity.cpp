#include "quantkit/granularity.hpp"

#include "quantkit/enum_names.hpp"
#include "quantkit/error.hpp"

namespace quantkit {
namespace {

std::int64_t resolve_axis(std::int64_t axis, std::int64_t rank, const char* what) {
  QK_CHECK(axis >= -rank && axis < rank, what, " axis ", axis,
           " is out of range for a tensor of rank ", rank, " (valid: ", -rank, "..", rank - 1, ")");
  return axis < 0 ? axis + rank : axis;
}

constexpr EnumNames<Granularity::Kind, 5> kKinds{{
    {Granularity::Kind::per_tensor, "per_tensor"},
    {Granularity::Kind::per_axis, "per_axis"},
    {Granularity::Kind::per_group, "per_group"},
    {Granularity::Kind::per_block, "per_block"},
    {Granularity::Kind::per_token, "per_token"},
}};

}  // namespace

std::string_view Granularity::kind_name(Kind kind) {
  return name_in(kKinds, kind);
}

Granularity Granularity::per_axis(std::int64_t axis) {
  Granularity g(Kind::per_axis);
  g.axis_ = axis;
  return g;
}

Granularity Granularity::per_group(std::int64_t group_size, std::int64_t axis) {
  QK_CHECK(group_size >= 1, "group_size ", group_size, " must be at least 1");
  Granularity g(Kind::per_group);
  g.group_size_ = group_size;
  g.axis_ = axis;
  return g;
}

Granularity Granularity::per_block(Shape block_shape) {
  for (std::size_t d = 0; d < block_shape.size(); ++d) {
    QK_CHECK(block_shape[d] >= 1, "block shape ", to_string(block_shape), " has size ",
             block_shape[d], " at dim ", d, "; block sizes must be at least 1");
  }
  Granularity g(Kind::per_block);
  g.block_shape_ = std::move(block_shape);
  return g;
}

Shape Granularity::block_size(const Shape& input_shape) const {
  const auto rank = static_cast<std::int64_t>(input_shape.size());
  Shape block(input_shape.size(), 1);
  switch (kind_) {
    case Kind::per_tensor:
      return input_shape;
    case Kind::per_axis: {
      block = input_shape;
      block[resolve_axis(axis_, rank, "per_axis")] = 1;
      return block;
    }
    case Kind::per_group: {
      const auto axis = resolve_axis(axis_, rank, "per_group");
      QK_CHECK(input_shape[axis] % group_size_ == 0, "group_size ", group_size_,
               " does not divide axis ", axis, " of length ", input_shape[axis], " (shape ",
               to_string(input_shape), ")");
      block[axis] = group_size_;
      return block;
    }
    case Kind::per_block: {
      const auto block_rank = static_cast<std::int64_t>(block_shape_.size());
      QK_CHECK(block_rank <= rank, "block shape ", to_string(block_shape_), " has rank ",
               block_rank, " but the input ", to_string(input_shape), " has rank ", rank);
      for (std::int64_t i = 0; i < block_rank; ++i) {
        const auto d = rank - block_rank + i;
        QK_CHECK(input_shape[d] % block_shape_[i] == 0, "block size ", block_shape_[i],
                 " does not divide dim ", d, " of length ", input_shape[d], " (shape ",
                 to_string(input_shape), ")");
        block[d] = block_shape_[i];
      }
      return block;
    }
    case Kind::per_token:
      QK_CHECK(rank >= 1, "per_token needs an input of rank >= 1");
      block.back() = input_shape.back();
      return block;
  }
  return block;
}

std::string Granularity::describe() const {
  switch (kind_) {
    case Kind::per_tensor:
      return std::string(kind_name(kind_));
    case Kind::per_axis:
      return detail::concat("per_axis(", axis_, ")");
    case Kind::per_group:
      return detail::concat("per_group(", group_size_, ", axis=", axis_, ")");
    case Kind::per_block:
      return detail::concat("per_block(", to_string(block_shape_), ")");
    case Kind::per_token:
      return std::string(kind_name(kind_));
  }
  return "?";
}

Shape block_grid_shape(const Shape& input_shape, const Shape& block_size) {
  QK_CHECK(input_shape.size() == block_size.size(), "block size ", to_string(block_size),
           " must have the rank of the input ", to_string(input_shape));
  Shape grid(input_shape.size());
  for (std::size_t d = 0; d < grid.size(); ++d) {
    // An empty dimension forms one (empty) block so the grid stays well defined.
    grid[d] = block_size[d] == 0 ? 1 : input_shape[d] / block_size[d];
  }
  return grid;
}

}  // namespace quantkit
