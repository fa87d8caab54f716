// The tables of measured wins that the switches' auto mode reads (the persistent kernels'
// in persistent/persistent_defaults.h, graph replay's in replay/replay_defaults.h): rows
// of layer shapes, each from a GPU run whose results are committed. Constexpr, so that a
// malformed row, and the lookup itself (the checks below), fail the build.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gru_cuda {

// Layers of one scalar type (c10's name: "Float", "Half", "BFloat16", "Double"), H and N
// (batch rows, the first step's for packed input) within their bounds, one or both
// directions.
struct ShapeRange {
  std::string_view dtype;
  int64_t h_min, h_max, n_min, n_max;
  int64_t directions;  // 1, 2, or 0 for either

  constexpr bool holds(std::string_view type, int64_t H, int64_t N, int64_t D) const {
    return type == dtype && h_min <= H && H <= h_max && n_min <= N && N <= n_max &&
           (directions == 0 || directions == D);
  }
  constexpr bool well_formed() const {
    return (dtype == "Float" || dtype == "Half" || dtype == "BFloat16" || dtype == "Double") &&
           0 < h_min && h_min <= h_max && 0 < n_min && n_min <= n_max && 0 <= directions &&
           directions <= 2;
  }
};

// The first row whose shapes hold the layer, or nullptr: a row measured at those shapes.
template <typename Row, std::size_t Count>
constexpr const Row* measured_row(const std::array<Row, Count>& rows, std::string_view dtype,
                                  int64_t H, int64_t N, int64_t D) {
  for (const Row& row : rows) {
    if (row.shapes.holds(dtype, H, N, D)) return &row;
  }
  return nullptr;
}

template <typename Row, std::size_t Count>
constexpr bool rows_well_formed(const std::array<Row, Count>& rows) {
  for (const Row& row : rows) {
    if (!row.shapes.well_formed() || row.run.empty() || !row.well_formed()) return false;
  }
  return true;
}

namespace measured_table_checks {
struct Row {
  ShapeRange shapes;
  std::string_view run;
  constexpr bool well_formed() const { return true; }
};
constexpr std::array<Row, 3> kRows{{{{"Float", 256, 512, 1, 64, 1}, "a"},
                                    {{"Float", 128, 1024, 1, 128, 0}, "b"},
                                    {{"BFloat16", 256, 256, 8, 8, 2}, "c"}}};
static_assert(measured_row(kRows, "Float", 256, 1, 1) == &kRows[0]);   // the first that holds
static_assert(measured_row(kRows, "Float", 512, 64, 2) == &kRows[1]);   // directions
static_assert(measured_row(kRows, "Float", 1024, 129, 1) == nullptr);  // N past every row
static_assert(measured_row(kRows, "Half", 256, 8, 2) == nullptr);       // another type
static_assert(measured_row(kRows, "BFloat16", 256, 8, 2) == &kRows[2]);
static_assert(measured_row(kRows, "BFloat16", 256, 8, 1) == nullptr);
static_assert(measured_row(std::array<Row, 0>{}, "Float", 256, 8, 1) == nullptr);
static_assert(rows_well_formed(kRows));
static_assert(!rows_well_formed(std::array<Row, 1>{{{{"Float", 512, 256, 1, 8, 1}, "d"}}}));
static_assert(!rows_well_formed(std::array<Row, 1>{{{{"float32", 1, 8, 1, 8, 1}, "e"}}}));
}  // namespace measured_table_checks

}  // namespace gru_cuda
