#include "report/plot.h"

#include <cairo.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>

#include "core/error.h"

// Fontconfig (used by cairo's toy text API) keeps process-lifetime caches that LeakSanitizer reports as
// leaks at exit in sanitizer builds; they are not ours, so tell LSan to ignore allocations made inside it.
#if defined(__SANITIZE_ADDRESS__)
#define AMSKV_REPORT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AMSKV_REPORT_ASAN 1
#endif
#endif
#ifdef AMSKV_REPORT_ASAN
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif

namespace amskv::report {
namespace {

constexpr const char* kFont = "sans-serif";

// ---------------------------------------------------------------------------------------------------
// Canvas: a white image surface with a cairo context, written atomically.

class Canvas {
 public:
  Canvas(int width, int height, const char* what) : width_(width), height_(height) {
    AMSKV_CHECK(width > 0 && height > 0 && width <= 20000 && height <= 20000, what, ": image size ", width,
                "x", height, " out of range");
    surface_ = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    if (cairo_surface_status(surface_) != CAIRO_STATUS_SUCCESS) {
      std::string msg = cairo_status_to_string(cairo_surface_status(surface_));
      cairo_surface_destroy(surface_);
      fail(what, ": cannot create a ", width, "x", height, " image: ", msg);
    }
    cr_ = cairo_create(surface_);
    cairo_set_source_rgb(cr_, 1, 1, 1);
    cairo_paint(cr_);
    cairo_select_font_face(cr_, kFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;
  ~Canvas() {
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
  }

  cairo_t* cr() const { return cr_; }
  int width() const { return width_; }
  int height() const { return height_; }

  // Writes to "<path>.tmp.<pid>.<n>" and renames over `path`.
  void write_png(const std::string& path, const char* what) {
    AMSKV_CHECK(!path.empty(), what, ": empty output path");
    cairo_surface_flush(surface_);
    if (cairo_status(cr_) != CAIRO_STATUS_SUCCESS)
      fail(what, ": drawing ", path, " failed: ", cairo_status_to_string(cairo_status(cr_)));
    static std::atomic<unsigned> counter{0};
    const std::string tmp = cat(path, ".tmp.", static_cast<long>(getpid()), ".", counter++);
    cairo_status_t st = cairo_surface_write_to_png(surface_, tmp.c_str());
    if (st != CAIRO_STATUS_SUCCESS) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      fail(what, ": cannot write ", path, " (via ", tmp, "): ", cairo_status_to_string(st));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      fail(what, ": cannot rename ", tmp, " to ", path, ": ", ec.message());
    }
  }

 private:
  int width_, height_;
  cairo_surface_t* surface_ = nullptr;
  cairo_t* cr_ = nullptr;
};

// ---------------------------------------------------------------------------------------------------
// Text.

enum class HAlign { Left, Center, Right };
enum class VAlign { Top, Middle, Baseline, Bottom };

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s) {
  if (s.empty()) return 0;
  cairo_text_extents_t te;
  cairo_text_extents(cr, s.c_str(), &te);
  return te.x_advance;
}

// Height of one line of the current font (ascent + descent).
double line_height(cairo_t* cr) {
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  return fe.ascent + fe.descent;
}

// Draws `s` anchored at (x, y); `angle` in radians (counter-clockwise on screen when negative).
void draw_text(cairo_t* cr, const std::string& s, double x, double y, HAlign h, VAlign v, double angle = 0) {
  if (s.empty()) return;
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const double w = text_width(cr, s);
  double dx = 0;
  if (h == HAlign::Center) dx = -w / 2;
  if (h == HAlign::Right) dx = -w;
  double dy = 0;
  switch (v) {
    case VAlign::Top: dy = fe.ascent; break;
    case VAlign::Middle: dy = (fe.ascent - fe.descent) / 2; break;
    case VAlign::Baseline: dy = 0; break;
    case VAlign::Bottom: dy = -fe.descent; break;
  }
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (angle != 0) cairo_rotate(cr, angle);
  cairo_move_to(cr, dx, dy);
  cairo_show_text(cr, s.c_str());
  cairo_new_path(cr);
  cairo_restore(cr);
}

void set_rgb(cairo_t* cr, const Rgb& c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

const Rgb kText{0.10, 0.10, 0.10};
const Rgb kAxis{0.25, 0.25, 0.25};
const Rgb kGrid{0.88, 0.88, 0.88};
const Rgb kMissing{0.78, 0.78, 0.78};

// ---------------------------------------------------------------------------------------------------
// Numbers.

std::string printf_double(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// "2.5e-05" -> "2.5e-5", "1e+10" -> "1e10".
std::string tidy_exponent(std::string s) {
  const size_t e = s.find_first_of("eE");
  if (e == std::string::npos) return s;
  std::string mant = s.substr(0, e), exp = s.substr(e + 1);
  bool neg = false;
  if (!exp.empty() && (exp[0] == '+' || exp[0] == '-')) {
    neg = exp[0] == '-';
    exp.erase(0, 1);
  }
  const size_t nz = exp.find_first_not_of('0');
  exp = nz == std::string::npos ? "0" : exp.substr(nz);
  return mant + "e" + (neg ? "-" : "") + exp;
}

// Formats a value of the given magnitude compactly ("%.3g" style, no "-0").
std::string format_value(double v, const std::string& fmt = "") {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) v = 0;  // no "-0"
  if (!fmt.empty()) {
    char buf[128];
    std::snprintf(buf, sizeof buf, fmt.c_str(), v);
    return buf;
  }
  // Three significant digits; plain decimals between 1e-3 and 1e5, else scientific.
  const double a = std::fabs(v);
  if (a >= 1e-3 && a < 1e5) {
    const int decimals = std::max(0, 2 - static_cast<int>(std::floor(std::log10(a))));
    std::string out = printf_double(cat("%.", decimals, "f").c_str(), v);
    if (out.find('.') != std::string::npos) {
      out.erase(out.find_last_not_of('0') + 1);
      if (out.back() == '.') out.pop_back();
    }
    return out;
  }
  return tidy_exponent(printf_double("%.3g", v));
}

// Formats a tick value on an axis whose ticks are `step` apart, with just enough decimals.
std::string format_tick(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;
  const double mag = std::max(std::fabs(v), step);
  if (mag >= 1e6 || (mag < 1e-3 && mag > 0)) {
    // Scientific, with as many digits as the step needs relative to the value.
    int digits = 1;
    if (v != 0) digits = std::clamp(static_cast<int>(std::floor(std::log10(std::fabs(v)))) -
                                        static_cast<int>(std::floor(std::log10(step))) + 1, 1, 6);
    char fmt[16];
    std::snprintf(fmt, sizeof fmt, "%%.%dg", digits);
    return tidy_exponent(printf_double(fmt, v));
  }
  int decimals = 0;
  // Smallest number of decimals that represents every multiple of step exactly enough.
  while (decimals < 8) {
    const double scaled = step * std::pow(10.0, decimals);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) break;
    ++decimals;
  }
  char fmt[16];
  std::snprintf(fmt, sizeof fmt, "%%.%df", decimals);
  std::string s = printf_double(fmt, v);
  if (s == "-0" || (s.size() > 1 && s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos)) s.erase(0, 1);
  return s;
}

// A step nice * 10^exp; multiples are computed as (k * nice) / 10^-exp so that 3 x 0.2 prints as 0.6.
struct NiceStep {
  double nice = 1;
  int exp = 0;
  double value() const { return multiple(1); }
  double multiple(double k) const {
    return exp >= 0 ? k * nice * std::pow(10.0, exp) : (k * nice) / std::pow(10.0, -exp);
  }
};

NiceStep nice_step_of(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(1, target);
  NiceStep s;
  s.exp = static_cast<int>(std::floor(std::log10(raw)));
  const double norm = raw / std::pow(10.0, s.exp);
  // The candidate nearest to the raw step (in ratio), so that the tick count stays close to the target.
  double best = std::numeric_limits<double>::infinity();
  for (double c : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    const double d = std::fabs(std::log(c / norm));
    if (d < best - 1e-12) {
      best = d;
      s.nice = c;
    }
  }
  if (s.nice == 10) {
    s.nice = 1;
    ++s.exp;
  }
  return s;
}

// Tick labels of one axis; very large or small values share a power of ten shown once ("×10⁹").
struct TickLabels {
  std::vector<std::string> labels;
  std::string multiplier;  // empty when none
};

std::string superscript(int e) {
  static const char* digits[10] = {"\u2070", "\u00b9", "\u00b2", "\u00b3", "\u2074",
                                   "\u2075", "\u2076", "\u2077", "\u2078", "\u2079"};
  std::string out = e < 0 ? "\u207b" : "";
  for (char ch : std::to_string(std::abs(e))) out += digits[ch - '0'];
  return out;
}

TickLabels axis_labels(const std::vector<double>& ticks, double step) {
  TickLabels t;
  double maxabs = 0;
  for (double v : ticks) maxabs = std::max(maxabs, std::fabs(v));
  int e = 0;
  if (maxabs >= 1e5 || (maxabs > 0 && maxabs < 1e-3)) e = static_cast<int>(std::floor(std::log10(maxabs)));
  const double scale = std::pow(10.0, e);
  for (double v : ticks) t.labels.push_back(format_tick(e == 0 ? v : v / scale, e == 0 ? step : step / scale));
  if (e != 0) t.multiplier = "\u00d710" + superscript(e);
  return t;
}

// ---------------------------------------------------------------------------------------------------
// Colour scale shared by heatmaps and colour bars.

struct ColorScale {
  double vmin = 0, vmax = 1;
  bool log = false;

  bool missing(double v) const { return !std::isfinite(v) || (log && v <= 0); }
  // Position in [0, 1] (clamped); only for non-missing values.
  double position(double v) const {
    double a = vmin, b = vmax, x = v;
    if (log) {
      a = std::log10(a);
      b = std::log10(b);
      x = std::log10(x);
    }
    if (!(b > a)) return 0.5;
    return std::clamp((x - a) / (b - a), 0.0, 1.0);
  }
  Rgb color(double v) const { return missing(v) ? kMissing : colormap(position(v)); }
};

ColorScale make_scale(const std::vector<const std::vector<std::vector<double>>*>& maps, const HeatmapStyle& style,
                      const char* what) {
  ColorScale s;
  s.log = style.log_scale;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto* m : maps)
    for (const auto& row : *m)
      for (double v : row)
        if (!s.missing(v)) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
  if (!(lo <= hi)) {  // no usable data
    lo = s.log ? 0.1 : 0;
    hi = 1;
  }
  if (style.vmin) lo = *style.vmin;
  if (style.vmax) hi = *style.vmax;
  AMSKV_CHECK(std::isfinite(lo) && std::isfinite(hi), what, ": colour range [", lo, ", ", hi, "] not finite");
  AMSKV_CHECK(lo <= hi, what, ": vmin ", lo, " > vmax ", hi);
  if (s.log) AMSKV_CHECK(lo > 0, what, ": log colour scale needs vmin > 0, got ", lo);
  if (lo == hi) {
    if (s.log) {
      lo /= 2;
      hi *= 2;
    } else {
      const double d = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
      lo -= d;
      hi += d;
    }
  }
  s.vmin = lo;
  s.vmax = hi;
  return s;
}

void check_rectangular(const std::vector<std::vector<double>>& values, const char* what, const std::string& which) {
  AMSKV_CHECK(!values.empty() && !values[0].empty(), what, ": ", which, " is empty");
  for (size_t r = 0; r < values.size(); ++r)
    AMSKV_CHECK(values[r].size() == values[0].size(), what, ": ", which, " row ", r, " has ", values[r].size(),
                " values, row 0 has ", values[0].size());
}

// ---------------------------------------------------------------------------------------------------
// Heatmap pieces.

struct Rect {
  double x, y, w, h;
};

std::vector<std::string> tick_labels(const std::vector<std::string>& given, size_t n) {
  if (given.size() == n) return given;
  std::vector<std::string> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = std::to_string(i);
  return out;
}

// Draws every cell; NaN / non-positive-on-log cells grey. Optionally writes the values.
void draw_cells(cairo_t* cr, const std::vector<std::vector<double>>& values, const Rect& area, const ColorScale& scale,
                const HeatmapStyle& style) {
  const size_t rows = values.size(), cols = values[0].size();
  const double cw = area.w / static_cast<double>(cols), ch = area.h / static_cast<double>(rows);
  auto row_y = [&](size_t r, bool top) {
    const size_t k = style.row0_at_top ? r : rows - 1 - r;
    return std::round(area.y + (top ? k : k + 1) * ch);
  };
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
  for (size_t r = 0; r < rows; ++r) {
    const double y0 = row_y(r, true), y1 = row_y(r, false);
    for (size_t c = 0; c < cols; ++c) {
      const double x0 = std::round(area.x + c * cw), x1 = std::round(area.x + (c + 1) * cw);
      set_rgb(cr, scale.color(values[r][c]));
      cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
      cairo_fill(cr);
    }
  }
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);

  // Value annotations.
  if (!style.annotate || static_cast<int>(rows) > style.annotate_max_cells ||
      static_cast<int>(cols) > style.annotate_max_cells)
    return;
  double size = std::min(13.0, ch * 0.42);
  if (size < 7.5) return;
  set_font(cr, size);
  double widest = 0;
  std::vector<std::vector<std::string>> text(rows, std::vector<std::string>(cols));
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      const double v = values[r][c];
      if (!std::isfinite(v)) continue;
      text[r][c] = format_value(v, style.value_format);
      widest = std::max(widest, text_width(cr, text[r][c]));
    }
  if (widest > cw - 4) {  // shrink once, then give up
    size *= (cw - 4) / widest;
    if (size < 7.5) return;
    set_font(cr, size);
  }
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      if (text[r][c].empty()) continue;
      const Rgb bg = scale.color(values[r][c]);
      const double lum = 0.2126 * bg.r + 0.7152 * bg.g + 0.0722 * bg.b;
      cairo_set_source_rgb(cr, lum > 0.45 ? 0.05 : 1.0, lum > 0.45 ? 0.05 : 1.0, lum > 0.45 ? 0.05 : 1.0);
      const double yc = (row_y(r, true) + row_y(r, false)) / 2;
      draw_text(cr, text[r][c], area.x + (c + 0.5) * cw, yc, HAlign::Center, VAlign::Middle);
    }
}

void draw_frame(cairo_t* cr, const Rect& a) {
  set_rgb(cr, kAxis);
  cairo_set_line_width(cr, 1.0);
  cairo_rectangle(cr, std::round(a.x) - 0.5, std::round(a.y) - 0.5, std::round(a.w) + 1, std::round(a.h) + 1);
  cairo_stroke(cr);
}

double max_width(cairo_t* cr, const std::vector<std::string>& labels) {
  double w = 0;
  for (const auto& s : labels) w = std::max(w, text_width(cr, s));
  return w;
}

// Every how many labels to draw so that labels `extent` px long fit on slots `slot` px apart.
size_t label_stride(double extent, double slot, double gap = 6) {
  if (slot <= 0) return 1;
  return std::max<size_t>(1, static_cast<size_t>(std::ceil((extent + gap) / slot)));
}

// Geometry of the x tick labels under a heatmap: horizontal if they fit in a column, else rotated 45°.
struct XTickLayout {
  bool rotated = false;
  size_t stride = 1;
  double height = 0;  // px below the tick marks
};

XTickLayout layout_x_ticks(cairo_t* cr, const std::vector<std::string>& labels, double cell_w) {
  XTickLayout t;
  const double widest = max_width(cr, labels);
  const double lh = line_height(cr);
  const size_t horizontal = label_stride(widest, cell_w, 8);
  const size_t rotated = label_stride(lh * 1.414, cell_w, 4);
  if (horizontal <= rotated) {
    t.stride = horizontal;
    t.height = lh;
  } else {
    t.rotated = true;
    t.stride = rotated;
    t.height = (widest + lh) * 0.7072;
  }
  return t;
}

void draw_x_ticks(cairo_t* cr, const std::vector<std::string>& labels, const Rect& area, const XTickLayout& lay) {
  const size_t n = labels.size();
  const double cw = area.w / static_cast<double>(n);
  const double y = area.y + area.h;
  set_rgb(cr, kAxis);
  cairo_set_line_width(cr, 1.0);
  for (size_t i = 0; i < n; i += lay.stride) {
    const double x = std::round(area.x + (i + 0.5) * cw) + 0.5;
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x, y + 4);
  }
  cairo_stroke(cr);
  set_rgb(cr, kText);
  for (size_t i = 0; i < n; i += lay.stride) {
    const double x = area.x + (i + 0.5) * cw;
    if (lay.rotated)
      draw_text(cr, labels[i], x + 3, y + 6, HAlign::Right, VAlign::Top, -M_PI / 4);
    else
      draw_text(cr, labels[i], x, y + 6, HAlign::Center, VAlign::Top);
  }
}

void draw_y_ticks(cairo_t* cr, const std::vector<std::string>& labels, const Rect& area, bool row0_at_top) {
  const size_t n = labels.size();
  const double ch = area.h / static_cast<double>(n);
  const size_t stride = label_stride(line_height(cr), ch, 2);
  set_rgb(cr, kAxis);
  cairo_set_line_width(cr, 1.0);
  auto yc = [&](size_t r) { return area.y + ((row0_at_top ? r : n - 1 - r) + 0.5) * ch; };
  for (size_t r = 0; r < n; r += stride) {
    cairo_move_to(cr, area.x - 4, std::round(yc(r)) + 0.5);
    cairo_line_to(cr, area.x, std::round(yc(r)) + 0.5);
  }
  cairo_stroke(cr);
  set_rgb(cr, kText);
  for (size_t r = 0; r < n; r += stride) draw_text(cr, labels[r], area.x - 7, yc(r), HAlign::Right, VAlign::Middle);
}

// Colour bar ticks: values and labels, always including both ends.
std::vector<std::pair<double, std::string>> colorbar_ticks(const ColorScale& s) {
  std::vector<std::pair<double, std::string>> out;
  out.emplace_back(s.vmin, format_value(s.vmin));
  if (s.log) {
    const double a = std::log10(s.vmin), b = std::log10(s.vmax);
    std::vector<double> mult = b - a < 2.5 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
    const int step = std::max(1, static_cast<int>(std::ceil((b - a) / 7)));
    for (int e = static_cast<int>(std::floor(a)); e <= static_cast<int>(std::ceil(b)); e += step)
      for (double m : mult) {
        const double v = m * std::pow(10.0, e);
        if (v > s.vmin && v < s.vmax) out.emplace_back(v, format_value(v));
      }
  } else {
    const auto ticks = nice_ticks(s.vmin, s.vmax, 5);
    const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
    for (double v : ticks)
      if (v > s.vmin && v < s.vmax) out.emplace_back(v, format_tick(v, step));
  }
  out.emplace_back(s.vmax, format_value(s.vmax));
  return out;
}

// Width the colour bar needs (bar + labels + rotated title).
struct ColorbarLayout {
  double bar_w = 16, label_w = 0, title_h = 0;
  double total() const { return bar_w + 8 + label_w + (title_h > 0 ? 10 + title_h : 0); }
};

ColorbarLayout layout_colorbar(cairo_t* cr, const ColorScale& s, const HeatmapStyle& style, double tick_font,
                               double label_font) {
  ColorbarLayout l;
  set_font(cr, tick_font);
  for (const auto& t : colorbar_ticks(s)) l.label_w = std::max(l.label_w, text_width(cr, t.second));
  if (!style.colorbar_label.empty()) {
    set_font(cr, label_font);
    l.title_h = line_height(cr);
  }
  return l;
}

void draw_colorbar(cairo_t* cr, const ColorScale& s, const HeatmapStyle& style, const Rect& bar,
                   const ColorbarLayout& l, double tick_font, double label_font, bool show_missing) {
  // Gradient, one strip per pixel row, top = vmax.
  const int n = std::max(1, static_cast<int>(std::round(bar.h)));
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
  for (int i = 0; i < n; ++i) {
    const double t = 1.0 - (i + 0.5) / n;
    set_rgb(cr, colormap(t));
    cairo_rectangle(cr, std::round(bar.x), std::round(bar.y) + i, std::round(bar.w), 1);
    cairo_fill(cr);
  }
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
  draw_frame(cr, Rect{bar.x, bar.y, std::round(bar.w), static_cast<double>(n)});

  set_font(cr, tick_font);
  const double lh = line_height(cr);
  const auto ticks = colorbar_ticks(s);
  auto ypos = [&](double v) { return std::round(bar.y) + (1.0 - s.position(v)) * n; };
  const double y_top = ypos(s.vmax), y_bottom = ypos(s.vmin);
  for (size_t k = 0; k < ticks.size(); ++k) {
    const bool end = k == 0 || k + 1 == ticks.size();
    const double y = ypos(ticks[k].first);
    // Interior ticks must keep clear of the end labels.
    if (!end && (y - y_top < lh * 1.2 || y_bottom - y < lh * 1.2)) continue;
    set_rgb(cr, kAxis);
    cairo_set_line_width(cr, 1.0);
    cairo_move_to(cr, bar.x + bar.w, std::round(y) + 0.5);
    cairo_line_to(cr, bar.x + bar.w + 4, std::round(y) + 0.5);
    cairo_stroke(cr);
    set_rgb(cr, kText);
    draw_text(cr, ticks[k].second, bar.x + bar.w + 7, y, HAlign::Left, VAlign::Middle);
  }
  if (!style.colorbar_label.empty()) {
    set_font(cr, label_font);
    set_rgb(cr, kText);
    draw_text(cr, style.colorbar_label, bar.x + l.bar_w + 8 + l.label_w + 10, bar.y + bar.h / 2, HAlign::Center,
              VAlign::Top, M_PI / 2);
  }
  if (show_missing) {
    set_font(cr, tick_font);
    const double y = bar.y + bar.h + lh * 0.9;
    set_rgb(cr, kMissing);
    cairo_rectangle(cr, std::round(bar.x), std::round(y), std::round(bar.w), std::round(lh));
    cairo_fill(cr);
    set_rgb(cr, kText);
    draw_text(cr, s.log ? "n/a, <= 0" : "n/a", bar.x + bar.w + 7, std::round(y) + lh / 2, HAlign::Left,
              VAlign::Middle);
  }
}

bool any_missing(const std::vector<std::vector<double>>& values, const ColorScale& s) {
  for (const auto& row : values)
    for (double v : row)
      if (s.missing(v)) return true;
  return false;
}

// Font sizes (px).
constexpr double kTitleFont = 19;
constexpr double kLabelFont = 14;
constexpr double kTickFont = 12;
constexpr double kPanelTitleFont = 13;
constexpr double kPanelTickFont = 10.5;
constexpr double kPad = 14;

// ---------------------------------------------------------------------------------------------------
// Line plot pieces.

const std::array<Rgb, 10> kPalette = {{
    {0.00, 0.45, 0.70},  // blue
    {0.90, 0.50, 0.05},  // orange
    {0.00, 0.60, 0.45},  // green
    {0.80, 0.20, 0.25},  // red
    {0.55, 0.35, 0.75},  // purple
    {0.35, 0.70, 0.90},  // sky
    {0.55, 0.34, 0.16},  // brown
    {0.85, 0.45, 0.70},  // pink
    {0.35, 0.35, 0.35},  // grey
    {0.65, 0.65, 0.10},  // olive
}};

enum class Marker { Circle, Square, TriangleUp, Diamond, TriangleDown, Plus, Cross };
constexpr int kMarkerCount = 7;

void marker_path(cairo_t* cr, Marker m, double x, double y, double r) {
  switch (m) {
    case Marker::Circle: cairo_new_sub_path(cr); cairo_arc(cr, x, y, r, 0, 2 * M_PI); break;
    case Marker::Square: cairo_rectangle(cr, x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7); break;
    case Marker::TriangleUp:
      cairo_move_to(cr, x, y - r * 1.15);
      cairo_line_to(cr, x + r * 1.05, y + r * 0.75);
      cairo_line_to(cr, x - r * 1.05, y + r * 0.75);
      cairo_close_path(cr);
      break;
    case Marker::Diamond:
      cairo_move_to(cr, x, y - r * 1.2);
      cairo_line_to(cr, x + r * 1.0, y);
      cairo_line_to(cr, x, y + r * 1.2);
      cairo_line_to(cr, x - r * 1.0, y);
      cairo_close_path(cr);
      break;
    case Marker::TriangleDown:
      cairo_move_to(cr, x, y + r * 1.15);
      cairo_line_to(cr, x + r * 1.05, y - r * 0.75);
      cairo_line_to(cr, x - r * 1.05, y - r * 0.75);
      cairo_close_path(cr);
      break;
    case Marker::Plus:
    case Marker::Cross: break;  // stroked, see draw_marker
  }
}

void draw_marker(cairo_t* cr, Marker m, const Rgb& c, double x, double y, double r) {
  if (m == Marker::Plus || m == Marker::Cross) {
    const double a = m == Marker::Plus ? 0 : M_PI / 4;
    const double rr = r * 1.25;
    for (int k = 0; k < 2; ++k) {
      const double ang = a + k * M_PI / 2;
      cairo_move_to(cr, x - rr * std::cos(ang), y - rr * std::sin(ang));
      cairo_line_to(cr, x + rr * std::cos(ang), y + rr * std::sin(ang));
    }
    set_rgb(cr, c);
    cairo_set_line_width(cr, 2.2);
    cairo_stroke(cr);
    return;
  }
  marker_path(cr, m, x, y, r);
  set_rgb(cr, c);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, 1.0);
  cairo_stroke(cr);
}

constexpr size_t kMaxMarkedPoints = 120;  // series with more points are drawn as lines only

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  double step = 1;
};

// Range [lo, hi] of the data (or given limits), widened to nice ticks where not fixed.
Axis make_axis(double lo, double hi, std::optional<double> fix_lo, std::optional<double> fix_hi, int target) {
  if (fix_lo) lo = *fix_lo;
  if (fix_hi) hi = *fix_hi;
  if (!(lo <= hi)) {
    lo = 0;
    hi = 1;
  }
  if (lo == hi) {
    const double d = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    if (!fix_lo) lo -= d;
    if (!fix_hi) hi += d;
    if (lo == hi) hi = lo + 1;
  }
  Axis a;
  // A small margin so that markers on the extremes are not cut; then widen to the enclosing tick where
  // that adds little.
  const double margin = (hi - lo) * 0.04;
  double l = fix_lo ? lo : lo - margin, h = fix_hi ? hi : hi + margin;
  const NiceStep step = nice_step_of(l, h, target);
  a.step = step.value();
  const double range = h - l;
  if (!fix_lo) {
    const double nl = step.multiple(std::floor(l / a.step + 1e-9));
    if (l - nl <= 0.05 * range) l = nl;
  }
  if (!fix_hi) {
    const double nh = step.multiple(std::ceil(h / a.step - 1e-9));
    if (nh - h <= 0.05 * range) h = nh;
  }
  a.lo = l;
  a.hi = h;
  for (double k = std::ceil(l / a.step - 1e-9); a.ticks.size() <= 1000; k += 1) {
    double v = step.multiple(k);
    if (v > h + a.step * 1e-9) break;
    if (std::fabs(v) < a.step * 1e-12) v = 0;
    a.ticks.push_back(v);
  }
  return a;
}

}  // namespace

// =====================================================================================================

Rgb colormap(double t) {
  // Ten control points of a viridis-like map, linear interpolation in between.
  static const std::array<Rgb, 10> pts = {{
      {0.267, 0.004, 0.329},
      {0.282, 0.157, 0.471},
      {0.243, 0.286, 0.537},
      {0.192, 0.408, 0.557},
      {0.149, 0.510, 0.557},
      {0.122, 0.620, 0.537},
      {0.208, 0.718, 0.475},
      {0.431, 0.808, 0.345},
      {0.710, 0.871, 0.169},
      {0.992, 0.906, 0.145},
  }};
  if (std::isnan(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0);
  const double f = t * (pts.size() - 1);
  const size_t i = std::min(pts.size() - 2, static_cast<size_t>(f));
  const double u = f - static_cast<double>(i);
  return {pts[i].r + u * (pts[i + 1].r - pts[i].r), pts[i].g + u * (pts[i + 1].g - pts[i].g),
          pts[i].b + u * (pts[i + 1].b - pts[i].b)};
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  AMSKV_CHECK(std::isfinite(lo) && std::isfinite(hi), "nice_ticks: range [", lo, ", ", hi, "] not finite");
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) return {lo};
  const NiceStep step = nice_step_of(lo, hi, std::max(1, target));
  const double sv = step.value();
  std::vector<double> out;
  const double first = std::ceil(lo / sv - 1e-9);
  for (double k = first; out.size() <= 1000; k += 1) {
    double v = step.multiple(k);
    if (v > hi + sv * 1e-9) break;
    if (std::fabs(v) < sv * 1e-12) v = 0;
    out.push_back(v);
  }
  return out;
}

void heatmap_png(const std::string& path, const std::vector<std::vector<double>>& values, const HeatmapStyle& style) {
  const char* what = "heatmap_png";
  check_rectangular(values, what, path);
  const size_t rows = values.size(), cols = values[0].size();
  const ColorScale scale = make_scale({&values}, style, what);
  Canvas canvas(style.width > 0 ? style.width : 900, style.height > 0 ? style.height : 600, what);
  cairo_t* cr = canvas.cr();
  const double W = canvas.width(), H = canvas.height();

  const auto xl = tick_labels(style.x_ticks, cols);
  const auto yl = tick_labels(style.y_ticks, rows);

  // Margins from text sizes.
  set_font(cr, kTitleFont, true);
  const double title_h = style.title.empty() ? 0 : line_height(cr) + 10;
  set_font(cr, kLabelFont);
  const double label_h = line_height(cr);
  set_font(cr, kTickFont);
  const double ytick_w = max_width(cr, yl);
  const ColorbarLayout cbl = layout_colorbar(cr, scale, style, kTickFont, kLabelFont);

  const double left = kPad + (style.y_label.empty() ? 0 : label_h + 10) + ytick_w + 8;
  const double right = kPad + 18 + cbl.total();
  const double top = kPad + title_h + 4;
  Rect area{left, top, W - left - right, 0};
  AMSKV_CHECK(area.w > 20, what, ": image ", W, "x", H, " too narrow for its labels");
  set_font(cr, kTickFont);
  const XTickLayout xt = layout_x_ticks(cr, xl, area.w / static_cast<double>(cols));
  const double bottom = kPad + 8 + xt.height + (style.x_label.empty() ? 0 : label_h + 10);
  area.h = H - top - bottom;
  AMSKV_CHECK(area.h > 20, what, ": image ", W, "x", H, " too short for its labels");

  // Title, centred on the whole image.
  if (!style.title.empty()) {
    set_font(cr, kTitleFont, true);
    set_rgb(cr, kText);
    draw_text(cr, style.title, W / 2, kPad, HAlign::Center, VAlign::Top);
  }
  draw_cells(cr, values, area, scale, style);
  draw_frame(cr, area);
  set_font(cr, kTickFont);
  draw_x_ticks(cr, xl, area, xt);
  draw_y_ticks(cr, yl, area, style.row0_at_top);
  set_font(cr, kLabelFont);
  set_rgb(cr, kText);
  if (!style.x_label.empty())
    draw_text(cr, style.x_label, area.x + area.w / 2, area.y + area.h + 8 + xt.height + 10, HAlign::Center,
              VAlign::Top);
  if (!style.y_label.empty())
    draw_text(cr, style.y_label, kPad, area.y + area.h / 2, HAlign::Center, VAlign::Top, -M_PI / 2);

  set_font(cr, kTickFont);
  const double lh = line_height(cr);
  const bool missing = any_missing(values, scale);
  Rect bar{W - right + 18, area.y, cbl.bar_w, area.h - (missing ? 2 * lh + 4 : 0)};
  draw_colorbar(cr, scale, style, bar, cbl, kTickFont, kLabelFont, missing);
  canvas.write_png(path, what);
}

void grid_of_heatmaps_png(const std::string& path, const std::vector<std::vector<std::vector<double>>>& maps,
                          const std::vector<std::string>& titles, const HeatmapStyle& style, int columns) {
  const char* what = "grid_of_heatmaps_png";
  AMSKV_CHECK(!maps.empty(), what, ": no maps for ", path);
  AMSKV_CHECK(columns > 0, what, ": columns must be positive, got ", columns);
  AMSKV_CHECK(titles.empty() || titles.size() == maps.size(), what, ": ", titles.size(), " titles for ",
              maps.size(), " maps");
  std::vector<const std::vector<std::vector<double>>*> ptrs;
  for (size_t k = 0; k < maps.size(); ++k) {
    check_rectangular(maps[k], what, cat(path, " map ", k));
    ptrs.push_back(&maps[k]);
  }
  const ColorScale scale = make_scale(ptrs, style, what);
  const size_t n = maps.size();
  const size_t ncol = std::min<size_t>(static_cast<size_t>(columns), n);
  const size_t nrow = (n + ncol - 1) / ncol;
  bool same_shape = true;
  for (const auto& m : maps) same_shape = same_shape && m.size() == maps[0].size() && m[0].size() == maps[0][0].size();

  // Measure text on a scratch surface before the image size is known.
  Canvas scratch_canvas(1, 1, what);
  cairo_t* scratch = scratch_canvas.cr();
  set_font(scratch, kTitleFont, true);
  const double title_h = style.title.empty() ? 0 : line_height(scratch) + 12;
  set_font(scratch, kLabelFont);
  const double label_h = line_height(scratch);
  set_font(scratch, kPanelTitleFont);
  const double ptitle_h = titles.empty() ? 4 : line_height(scratch) + 6;
  set_font(scratch, kPanelTickFont);
  double ytick_w = 0;
  for (const auto& m : maps) ytick_w = std::max(ytick_w, max_width(scratch, tick_labels(style.y_ticks, m.size())));
  const ColorbarLayout cbl = layout_colorbar(scratch, scale, style, kTickFont, kLabelFont);

  const double gap_x = same_shape ? 18 : 18 + ytick_w + 8;
  const double left = kPad + (style.y_label.empty() ? 0 : label_h + 10) + ytick_w + 8;
  const double right = kPad + 22 + cbl.total();
  const double top = kPad + title_h;
  int W = style.width, H = style.height;
  if (W <= 0) W = static_cast<int>(std::ceil(left + right + ncol * 240 + (ncol - 1) * gap_x));
  const double map_w = (W - left - right - (ncol - 1) * gap_x) / static_cast<double>(ncol);
  AMSKV_CHECK(map_w > 10, what, ": image width ", W, " too small for ", ncol, " panel columns");
  // Room under a map for its x tick labels (rotated when long), reserved below every grid row.
  set_font(scratch, kPanelTickFont);
  double xtick_h = 0;
  for (const auto& m : maps)
    xtick_h = std::max(xtick_h, layout_x_ticks(scratch, tick_labels(style.x_ticks, m[0].size()),
                                               map_w / static_cast<double>(m[0].size())).height);
  const double xtick_room = 8 + xtick_h;
  // Tick labels under a row other than the last are needed only when the last row is not full.
  const double gap_y = n % ncol == 0 ? 14 : xtick_room + 8;
  const double bottom = kPad + xtick_room + (style.x_label.empty() ? 0 : label_h + 10);
  if (H <= 0) H = static_cast<int>(std::ceil(top + bottom + nrow * (ptitle_h + 200) + (nrow - 1) * gap_y));
  Canvas canvas(W, H, what);
  cairo_t* cr = canvas.cr();
  const double map_h = (H - top - bottom - (nrow - 1) * gap_y) / static_cast<double>(nrow) - ptitle_h;
  AMSKV_CHECK(map_w > 10 && map_h > 10, what, ": image ", W, "x", H, " too small for ", nrow, "x", ncol, " panels");

  if (!style.title.empty()) {
    set_font(cr, kTitleFont, true);
    set_rgb(cr, kText);
    draw_text(cr, style.title, W / 2.0, kPad, HAlign::Center, VAlign::Top);
  }
  HeatmapStyle panel_style = style;
  for (size_t k = 0; k < n; ++k) {
    const size_t r = k / ncol, c = k % ncol;
    const Rect area{left + c * (map_w + gap_x), top + r * (ptitle_h + map_h + gap_y) + ptitle_h, map_w, map_h};
    const auto& m = maps[k];
    draw_cells(cr, m, area, scale, panel_style);
    draw_frame(cr, area);
    if (!titles.empty()) {
      set_font(cr, kPanelTitleFont);
      set_rgb(cr, kText);
      draw_text(cr, titles[k], area.x + area.w / 2, area.y - 6, HAlign::Center, VAlign::Bottom);
    }
    set_font(cr, kPanelTickFont);
    const bool bottom_of_column = k + ncol >= n;
    if (!same_shape || c == 0) draw_y_ticks(cr, tick_labels(style.y_ticks, m.size()), area, style.row0_at_top);
    if (!same_shape || bottom_of_column) {
      const auto xl = tick_labels(style.x_ticks, m[0].size());
      XTickLayout xt = layout_x_ticks(cr, xl, area.w / static_cast<double>(m[0].size()));
      draw_x_ticks(cr, xl, area, xt);
    }
  }
  const double grid_top = top + ptitle_h, grid_bottom = H - bottom;
  set_font(cr, kLabelFont);
  set_rgb(cr, kText);
  if (!style.x_label.empty())
    draw_text(cr, style.x_label, left + (W - left - right) / 2, grid_bottom + xtick_room + 10, HAlign::Center,
              VAlign::Top);
  if (!style.y_label.empty())
    draw_text(cr, style.y_label, kPad, (grid_top + grid_bottom) / 2, HAlign::Center, VAlign::Top, -M_PI / 2);

  bool missing = false;
  for (const auto& m : maps) missing = missing || any_missing(m, scale);
  set_font(cr, kTickFont);
  const double lh = line_height(cr);
  const double bar_h = grid_bottom - grid_top;
  Rect bar{W - right + 22, grid_top, cbl.bar_w, bar_h - (missing ? 2 * lh + 4 : 0)};
  draw_colorbar(cr, scale, style, bar, cbl, kTickFont, kLabelFont, missing);
  canvas.write_png(path, what);
}

void line_plot_png(const std::string& path, const std::vector<Series>& series, const LinePlotStyle& style) {
  const char* what = "line_plot_png";
  AMSKV_CHECK(!series.empty(), what, ": no series for ", path);
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& se = series[s];
    AMSKV_CHECK(se.x.size() == se.y.size(), what, ": series ", s, " (", se.label, ") has ", se.x.size(), " x and ",
                se.y.size(), " y values");
    for (size_t i = 0; i < se.x.size(); ++i) {
      if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
      xlo = std::min(xlo, se.x[i]);
      xhi = std::max(xhi, se.x[i]);
      ylo = std::min(ylo, se.y[i]);
      yhi = std::max(yhi, se.y[i]);
    }
  }
  if (style.reference_y && std::isfinite(*style.reference_y)) {
    ylo = std::min(ylo, *style.reference_y);
    yhi = std::max(yhi, *style.reference_y);
  }
  Canvas canvas(style.width, style.height, what);
  cairo_t* cr = canvas.cr();
  const double W = canvas.width(), H = canvas.height();

  const Axis ya = make_axis(ylo, yhi, style.y_min, style.y_max, std::max(3, static_cast<int>(H / 90)));
  set_font(cr, kTitleFont, true);
  const double title_h = style.title.empty() ? 0 : line_height(cr) + 10;
  set_font(cr, kLabelFont);
  const double label_h = line_height(cr);
  set_font(cr, kTickFont);
  const double tick_h = line_height(cr);
  const TickLabels ylabels = axis_labels(ya.ticks, ya.step);
  const double ytick_w = max_width(cr, ylabels.labels);

  // Legend entries (series with a label, then the reference line).
  struct Entry {
    std::string text;
    int series = -1;  // -1: the reference line
  };
  std::vector<Entry> entries;
  for (size_t s = 0; s < series.size(); ++s)
    if (!series[s].label.empty()) entries.push_back({series[s].label, static_cast<int>(s)});
  const bool has_ref = style.reference_y && std::isfinite(*style.reference_y);
  if (has_ref && !style.reference_label.empty()) entries.push_back({style.reference_label, -1});
  const bool show_legend = style.legend != LegendPlacement::None && !entries.empty();
  set_font(cr, kTickFont);
  const double entry_h = tick_h + 7;
  double legend_w = 0;
  for (const auto& e : entries) legend_w = std::max(legend_w, text_width(cr, e.text));
  legend_w += 12 + 34 + 8 + 12;
  const double legend_h = entries.size() * entry_h + 14;

  const double left = kPad + (style.y_label.empty() ? 0 : label_h + 12) + ytick_w + 10;
  const double top = kPad + title_h + 6 + (ylabels.multiplier.empty() ? 0 : tick_h);
  const double bottom = kPad + 8 + tick_h + (style.x_label.empty() ? 0 : label_h + 12);
  auto plot_rect = [&](bool legend_outside) {
    const double right = kPad + 10 + (legend_outside ? legend_w + 12 : 0);
    return Rect{left, top, W - left - right, H - top - bottom};
  };

  // Pixel positions of the data for a plot area (for legend placement and drawing).
  Axis xa;
  TickLabels xlabels;
  auto build_x = [&](const Rect& area) {
    set_font(cr, kTickFont);
    int target = std::max(2, static_cast<int>(area.w / 90));
    for (;;) {
      xa = make_axis(xlo, xhi, style.x_min, style.x_max, target);
      xlabels = axis_labels(xa.ticks, xa.step);
      const double widest = max_width(cr, xlabels.labels);
      const double spacing = xa.ticks.size() > 1 ? area.w * xa.step / (xa.hi - xa.lo) : area.w;
      if (widest + 14 <= spacing || target <= 2) break;
      --target;
    }
  };
  auto px = [&](const Rect& a, double x) { return a.x + (x - xa.lo) / (xa.hi - xa.lo) * a.w; };
  auto py = [&](const Rect& a, double y) { return a.y + a.h - (y - ya.lo) / (ya.hi - ya.lo) * a.h; };

  // Candidate legend boxes inside the plot and how many data points / line samples each covers.
  auto coverage = [&](const Rect& area, const Rect& box) {
    const double m = 4;
    auto inside = [&](double x, double y) {
      return x >= box.x - m && x <= box.x + box.w + m && y >= box.y - m && y <= box.y + box.h + m;
    };
    size_t count = 0;
    for (const auto& se : series) {
      bool have_prev = false;
      double x0 = 0, y0 = 0;
      for (size_t i = 0; i < se.x.size(); ++i) {
        if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) {
          have_prev = false;
          continue;
        }
        const double x1 = px(area, se.x[i]), y1 = py(area, se.y[i]);
        if (inside(x1, y1)) count += 10;  // a marker weighs more than a line sample
        if (have_prev) {
          const int steps = std::max(1, static_cast<int>(std::hypot(x1 - x0, y1 - y0) / 3));
          for (int k = 1; k < steps; ++k) {
            const double u = static_cast<double>(k) / steps;
            if (inside(x0 + u * (x1 - x0), y0 + u * (y1 - y0))) ++count;
          }
        }
        have_prev = true;
        x0 = x1;
        y0 = y1;
      }
    }
    if (has_ref) {
      const double yr = py(area, *style.reference_y);
      if (yr >= box.y - m && yr <= box.y + box.h + m) count += 1;
    }
    return count;
  };

  Rect area = plot_rect(false);
  AMSKV_CHECK(area.w > 40 && area.h > 40, what, ": image ", W, "x", H, " too small for its labels");
  build_x(area);
  Rect legend_box{0, 0, legend_w, legend_h};
  bool legend_outside = false;
  if (show_legend) {
    if (style.legend == LegendPlacement::Outside) {
      legend_outside = true;
    } else {
      const double inset = 10;
      const std::array<Rect, 4> corners = {{
          {area.x + area.w - inset - legend_w, area.y + inset, legend_w, legend_h},  // top right
          {area.x + inset, area.y + inset, legend_w, legend_h},                      // top left
          {area.x + area.w - inset - legend_w, area.y + area.h - inset - legend_h, legend_w, legend_h},
          {area.x + inset, area.y + area.h - inset - legend_h, legend_w, legend_h},
      }};
      size_t best = std::numeric_limits<size_t>::max();
      for (const auto& b : corners) {
        if (b.w > area.w - 2 * inset || b.h > area.h - 2 * inset) continue;
        const size_t c = coverage(area, b);
        if (c < best) {
          best = c;
          legend_box = b;
        }
      }
      if (best == std::numeric_limits<size_t>::max() || (style.legend == LegendPlacement::Auto && best > 0))
        legend_outside = true;
    }
    if (legend_outside) {
      area = plot_rect(true);
      AMSKV_CHECK(area.w > 40, what, ": image ", W, "x", H, " too narrow for the legend");
      build_x(area);
      legend_box = Rect{area.x + area.w + 12, area.y, legend_w, legend_h};
    }
  }

  // Title.
  if (!style.title.empty()) {
    set_font(cr, kTitleFont, true);
    set_rgb(cr, kText);
    draw_text(cr, style.title, area.x + area.w / 2, kPad, HAlign::Center, VAlign::Top);
  }
  // Grid lines and tick labels.
  cairo_set_line_width(cr, 1.0);
  set_font(cr, kTickFont);
  for (size_t i = 0; i < ya.ticks.size(); ++i) {
    const double y = std::round(py(area, ya.ticks[i])) + 0.5;
    set_rgb(cr, kGrid);
    cairo_move_to(cr, area.x, y);
    cairo_line_to(cr, area.x + area.w, y);
    cairo_stroke(cr);
    set_rgb(cr, kAxis);
    cairo_move_to(cr, area.x - 5, y);
    cairo_line_to(cr, area.x, y);
    cairo_stroke(cr);
    set_rgb(cr, kText);
    draw_text(cr, ylabels.labels[i], area.x - 8, py(area, ya.ticks[i]), HAlign::Right, VAlign::Middle);
  }
  if (!ylabels.multiplier.empty())
    draw_text(cr, ylabels.multiplier, area.x, area.y - 5, HAlign::Left, VAlign::Bottom);
  for (size_t i = 0; i < xa.ticks.size(); ++i) {
    const double v = xa.ticks[i];
    const double x = std::round(px(area, v)) + 0.5;
    set_rgb(cr, kGrid);
    cairo_move_to(cr, x, area.y);
    cairo_line_to(cr, x, area.y + area.h);
    cairo_stroke(cr);
    set_rgb(cr, kAxis);
    cairo_move_to(cr, x, area.y + area.h);
    cairo_line_to(cr, x, area.y + area.h + 5);
    cairo_stroke(cr);
    set_rgb(cr, kText);
    draw_text(cr, xlabels.labels[i], px(area, v), area.y + area.h + 8, HAlign::Center, VAlign::Top);
  }
  if (!xlabels.multiplier.empty())
    draw_text(cr, xlabels.multiplier, area.x + area.w, area.y + area.h + 8 + tick_h + 12, HAlign::Right, VAlign::Top);
  // Axis labels.
  set_font(cr, kLabelFont);
  set_rgb(cr, kText);
  if (!style.x_label.empty())
    draw_text(cr, style.x_label, area.x + area.w / 2, area.y + area.h + 8 + tick_h + 12, HAlign::Center, VAlign::Top);
  if (!style.y_label.empty())
    draw_text(cr, style.y_label, kPad, area.y + area.h / 2, HAlign::Center, VAlign::Top, -M_PI / 2);

  // Data, clipped to the plot area.
  cairo_save(cr);
  cairo_rectangle(cr, area.x, area.y, area.w, area.h);
  cairo_clip(cr);
  if (has_ref) {
    const double y = py(area, *style.reference_y);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cairo_set_line_width(cr, 1.5);
    const double dash[] = {7.0, 5.0};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, area.x, y);
    cairo_line_to(cr, area.x + area.w, y);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    if (!show_legend && !style.reference_label.empty()) {
      set_font(cr, kTickFont);
      draw_text(cr, style.reference_label, area.x + area.w - 6, y - 4, HAlign::Right, VAlign::Bottom);
    }
  }
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& se = series[s];
    if (!se.line) continue;
    set_rgb(cr, kPalette[s % kPalette.size()]);
    cairo_set_line_width(cr, style.line_width);
    bool pen = false;
    for (size_t i = 0; i < se.x.size(); ++i) {
      if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) {
        pen = false;
        continue;
      }
      if (pen)
        cairo_line_to(cr, px(area, se.x[i]), py(area, se.y[i]));
      else
        cairo_move_to(cr, px(area, se.x[i]), py(area, se.y[i]));
      pen = true;
    }
    cairo_stroke(cr);
  }
  if (style.markers)
    for (size_t s = 0; s < series.size(); ++s) {
      const auto& se = series[s];
      if (se.x.size() > kMaxMarkedPoints) continue;
      for (size_t i = 0; i < se.x.size(); ++i)
        if (std::isfinite(se.x[i]) && std::isfinite(se.y[i]))
          draw_marker(cr, static_cast<Marker>(s % kMarkerCount), kPalette[s % kPalette.size()], px(area, se.x[i]),
                      py(area, se.y[i]), se.line ? 4.5 : 7.0);
    }
  cairo_restore(cr);
  draw_frame(cr, area);

  // Legend.
  if (show_legend) {
    const Rect& b = legend_box;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_rectangle(cr, std::round(b.x) + 0.5, std::round(b.y) + 0.5, std::round(b.w), std::round(b.h));
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    set_font(cr, kTickFont);
    for (size_t k = 0; k < entries.size(); ++k) {
      const double yc = b.y + 7 + (k + 0.5) * entry_h;
      const double x0 = b.x + 12, x1 = x0 + 34;
      const int s = entries[k].series;
      if (s >= 0) {
        set_rgb(cr, kPalette[s % kPalette.size()]);
        cairo_set_line_width(cr, style.line_width);
        if (series[s].line) {
          cairo_move_to(cr, x0, yc);
          cairo_line_to(cr, x1, yc);
          cairo_stroke(cr);
        }
        if (style.markers && series[s].x.size() <= kMaxMarkedPoints)
          draw_marker(cr, static_cast<Marker>(s % kMarkerCount), kPalette[s % kPalette.size()], (x0 + x1) / 2, yc, 4.5);
      } else {
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        cairo_set_line_width(cr, 1.5);
        const double dash[] = {7.0, 5.0};
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, x0, yc);
        cairo_line_to(cr, x1, yc);
        cairo_stroke(cr);
        cairo_set_dash(cr, nullptr, 0, 0);
      }
      set_rgb(cr, kText);
      draw_text(cr, entries[k].text, x1 + 8, yc, HAlign::Left, VAlign::Middle);
    }
  }
  canvas.write_png(path, what);
}

}  // namespace amskv::report
