// Markdown (GitHub pipe) tables for benchmark output and reports.
#pragma once
#include <string>
#include <vector>

namespace amskv::report {

enum class Align {
  Auto,  // Right when every non-empty cell of the column is a number (e.g. "12", "-3.5e-2", "1.2x", "45%"), else Left
  Left,
  Right,
  Center,
};

// Renders
//   | name | PSNR |
//   | :--- | ---: |
//   | full |  inf |
// with every column padded to its widest cell (width counted in UTF-8 code points), a trailing newline
// after each line. `align` is empty (all Auto) or one entry per column. '|' inside a cell is escaped
// as "\|" and newlines become spaces. Throws amskv::Error when the header is empty or a row's length
// differs from the header's.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                           const std::vector<Align>& align = {});

}  // namespace amskv::report
