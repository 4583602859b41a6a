#include "report/markdown_table.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/error.h"

namespace amskv::report {
namespace {

size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s)
    if ((ch & 0xC0) != 0x80) ++n;  // count lead bytes only
  return n;
}

std::string escape_cell(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    if (ch == '|') {
      out += "\\|";
    } else if (ch == '\n' || ch == '\r') {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

// A number, optionally followed by a unit-like suffix such as "x", "%", " ms", " MiB"; also inf/nan.
bool looks_numeric(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  if (b == e) return false;
  const std::string t = s.substr(b, e - b);
  char* end = nullptr;
  std::strtod(t.c_str(), &end);
  if (end == t.c_str()) return false;
  // Allow a short alphabetic / % suffix (units).
  const std::string rest(end);
  if (rest.size() > 5) return false;
  for (char ch : rest)
    if (!(std::isalpha(static_cast<unsigned char>(ch)) || ch == '%' || ch == ' ' || ch == '/')) return false;
  return true;
}

}  // namespace

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                           const std::vector<Align>& align) {
  const size_t ncol = header.size();
  AMSKV_CHECK(ncol > 0, "markdown_table: empty header");
  AMSKV_CHECK(align.empty() || align.size() == ncol, "markdown_table: ", align.size(), " alignments for ", ncol,
              " columns");
  for (size_t r = 0; r < rows.size(); ++r)
    AMSKV_CHECK(rows[r].size() == ncol, "markdown_table: row ", r, " has ", rows[r].size(), " cells, header has ",
                ncol);

  std::vector<std::string> head(ncol);
  std::vector<std::vector<std::string>> body(rows.size(), std::vector<std::string>(ncol));
  std::vector<size_t> width(ncol, 0);
  for (size_t c = 0; c < ncol; ++c) {
    head[c] = escape_cell(header[c]);
    width[c] = std::max(width[c], display_width(head[c]));
  }
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < ncol; ++c) {
      body[r][c] = escape_cell(rows[r][c]);
      width[c] = std::max(width[c], display_width(body[r][c]));
    }

  std::vector<Align> al(ncol, Align::Auto);
  if (!align.empty()) al = align;
  for (size_t c = 0; c < ncol; ++c) {
    if (al[c] != Align::Auto) continue;
    bool numeric = false, all = true;
    for (const auto& row : body) {
      if (row[c].empty()) continue;
      numeric = true;
      all = all && looks_numeric(row[c]);
    }
    al[c] = numeric && all ? Align::Right : Align::Left;
  }
  // Room for ":---", "---:" and ":---:".
  for (size_t c = 0; c < ncol; ++c) width[c] = std::max<size_t>(width[c], al[c] == Align::Center ? 5 : 4);

  auto pad = [&](const std::string& s, size_t c) {
    const size_t fill = width[c] - display_width(s);
    switch (al[c]) {
      case Align::Right: return std::string(fill, ' ') + s;
      case Align::Center: return std::string(fill / 2, ' ') + s + std::string(fill - fill / 2, ' ');
      default: return s + std::string(fill, ' ');
    }
  };
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (size_t c = 0; c < ncol; ++c) {
      out += ' ';
      out += pad(cells[c], c);
      out += " |";
    }
    out += '\n';
    return out;
  };

  std::string out = line(head);
  out += "|";
  for (size_t c = 0; c < ncol; ++c) {
    std::string sep(width[c], '-');
    if (al[c] == Align::Left || al[c] == Align::Center) sep[0] = ':';
    if (al[c] == Align::Right || al[c] == Align::Center) sep.back() = ':';
    out += ' ';
    out += sep;
    out += " |";
  }
  out += "\n";
  for (const auto& row : body) out += line(row);
  return out;
}

}  // namespace amskv::report
