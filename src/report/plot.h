// PNG figures for the analysis tools (per-layer similarity curves, attention-density heatmaps) and for
// benchmark reports. Pure CPU, drawn with cairo; no model knowledge. Every function renders the whole
// figure in memory, writes it to a temporary file next to `path` and renames it into place, so a reader
// never sees a half-written PNG. Errors (bad shapes, unwritable directory) throw amskv::Error.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace amskv::report {

struct HeatmapStyle {
  std::string title;
  std::string x_label;  // describes the columns
  std::string y_label;  // describes the rows
  // One label per column / per row. Empty: the indices 0, 1, 2, ... When labels would collide, only every
  // k-th one is drawn.
  std::vector<std::string> x_ticks;
  std::vector<std::string> y_ticks;
  std::string colorbar_label;  // drawn along the colour bar (e.g. "density")
  // Colour scale. Unset: the smallest / largest finite value of the data (of all maps in a grid). Values
  // outside the range are clamped to the end colours.
  std::optional<double> vmin, vmax;
  // Logarithmic colour scale; non-positive values are then shown grey like NaN (they have no place on it).
  bool log_scale = false;
  // Row 0 at the top (matrix convention) or at the bottom (plot convention).
  bool row0_at_top = true;
  // Writes each cell's value into it (printf "%.3g" unless value_format is set) when the grid has at most
  // annotate_max_cells rows and columns and the cells are big enough for the text.
  bool annotate = true;
  int annotate_max_cells = 16;
  std::string value_format;  // printf format for one double, e.g. "%.2f"; empty: "%.3g"
  // Image size in pixels. 0: automatic (heatmap: 900 x 600; grid: from the number of panels).
  int width = 0;
  int height = 0;
};

// One heatmap of `values` (rows x columns; every row the same length; NaN cells grey) with a title,
// axis labels, tick labels, a colour bar carrying the min/max values and a viridis-like colour map.
void heatmap_png(const std::string& path, const std::vector<std::vector<double>>& values,
                 const HeatmapStyle& style);

// Several heatmaps (e.g. one attention-density map per layer) in a grid with `columns` panels per row,
// sharing one colour scale and one colour bar. titles[k] heads panel k (titles may be empty: no panel
// titles; otherwise one per map). style.title heads the figure; the axis labels are drawn once per grid
// row / column; tick labels apply to every panel whose shape matches them.
void grid_of_heatmaps_png(const std::string& path, const std::vector<std::vector<std::vector<double>>>& maps,
                          const std::vector<std::string>& titles, const HeatmapStyle& style, int columns);

struct Series {
  std::string label;
  std::vector<double> x, y;  // same length; a non-finite y breaks the line there
  bool line = true;  // false: markers only (points that are not a sequence)
};

enum class LegendPlacement {
  Auto,     // the inside corner that covers no data; outside on the right when every corner would
  Inside,   // the inside corner covering the fewest points, even if it covers some
  Outside,  // always to the right of the plot area
  None,
};

struct LinePlotStyle {
  std::string title;
  std::string x_label;
  std::string y_label;
  // Axis ranges; unset: the data range (and the reference line) with a small margin, then widened to
  // nice tick values.
  std::optional<double> x_min, x_max, y_min, y_max;
  bool markers = true;
  double line_width = 2.0;
  // A horizontal reference line (e.g. a threshold θ), dashed, labelled with reference_label.
  std::optional<double> reference_y;
  std::string reference_label;
  LegendPlacement legend = LegendPlacement::Auto;
  int width = 900;
  int height = 600;
};

// Lines with markers, one distinct colour and marker shape per series, nice ticks, a legend.
void line_plot_png(const std::string& path, const std::vector<Series>& series, const LinePlotStyle& style);

// The colour map used by the heatmaps: t in [0, 1] (clamped) to sRGB components in [0, 1]. Dark purple
// through blue and green to yellow, perceptually close to uniform.
struct Rgb {
  double r, g, b;
};
Rgb colormap(double t);

// "Nice" axis ticks covering [lo, hi]: about `target` values on steps of 1, 2, 2.5 or 5 x 10^k.
// Returned ticks lie within [lo, hi] (up to rounding).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace amskv::report
