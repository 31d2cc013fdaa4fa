#include "metrics/text_format.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <system_error>

namespace pgwd {
namespace {

// TextSerializer sets the stream's precision to max_digits10 - 1 and keeps the default float
// field: printf's %.16g, which std::to_chars reproduces with chars_format::general.
constexpr int kPrecision = std::numeric_limits<double>::max_digits10 - 1;

// Integral values below this print the same in %.16g as as integers (no exponent, no digits
// lost), and most series are counters and gauges holding small integers: the fast path.
constexpr double kIntegralFastPathLimit = 1e15;

// HELP: backslash and line feed are escaped (format 0.0.4); a double quote is not.
void append_help(std::string& out, std::string_view help) {
  std::size_t plain = 0;
  for (std::size_t i = 0; i < help.size(); ++i) {
    const char c = help[i];
    if (c != '\\' && c != '\n') continue;
    out.append(help.substr(plain, i - plain));
    out += c == '\n' ? "\\n" : "\\\\";
    plain = i + 1;
  }
  out.append(help.substr(plain));
}

// A number as text, formatted into a buffer of its own.
class Digits {
 public:
  explicit Digits(std::uint64_t value) {
    size_ = static_cast<std::size_t>(std::to_chars(text_, text_ + sizeof text_, value).ptr - text_);
  }
  explicit Digits(double value);
  std::string_view text() const noexcept { return {text_, size_}; }

 private:
  char text_[32];
  std::size_t size_ = 0;
};

Digits::Digits(double value) {
  if (std::isnan(value)) {
    size_ = 3;
    std::memcpy(text_, "Nan", size_);
    return;
  }
  if (std::isinf(value)) {
    size_ = 4;
    std::memcpy(text_, value < 0 ? "-Inf" : "+Inf", size_);
    return;
  }
  std::to_chars_result written{};
  if (std::fabs(value) < kIntegralFastPathLimit && value == std::trunc(value) &&
      !(value == 0 && std::signbit(value)))
    written = std::to_chars(text_, text_ + sizeof text_, static_cast<std::int64_t>(value));
  else
    written =
        std::to_chars(text_, text_ + sizeof text_, value, std::chars_format::general, kPrecision);
  size_ = static_cast<std::size_t>(written.ptr - text_);
}

std::size_t piece_size(std::string_view piece) noexcept {
  return piece.size();
}
std::size_t piece_size(char) noexcept {
  return 1;
}
char* put(char* at, std::string_view piece) noexcept {
  if (!piece.empty()) std::memcpy(at, piece.data(), piece.size());
  return at + piece.size();
}
char* put(char* at, char piece) noexcept {
  *at = piece;
  return at + 1;
}

// Appends a line's pieces with one change of `out`'s size (which grows its capacity
// geometrically): a scrape at 1,000 targets writes 73,000 lines, and appending them piece by
// piece, a library call and a capacity check each, made the writer a fifth slower.
template <typename... Pieces>
void append_line(std::string& out, const Pieces&... pieces) {
  const std::size_t at = out.size();
  out.resize(at + (piece_size(pieces) + ...));
  char* cursor = out.data() + at;
  ((cursor = put(cursor, pieces)), ...);
}

// One line of a series: `name{labels} value` (`name value` without labels), the name with
// `suffix` and the labels followed by `extra` (a bucket's `le`).
void append_series_line(std::string& out, const SeriesHead& series, std::string_view suffix,
                        std::string_view extra, std::string_view value) {
  if (series.labels.empty() && extra.empty())
    append_line(out, series.name, suffix, ' ', value, '\n');
  else if (series.labels.empty() || extra.empty())
    append_line(out, series.name, suffix, '{', series.labels, extra, "} ", value, '\n');
  else
    append_line(out, series.name, suffix, '{', series.labels, ',', extra, "} ", value, '\n');
}

// The extra label of a histogram bucket (`le="0.25"`), rendered.
void render_extra(std::string& text, std::string_view name, double value) {
  text.clear();
  text += name;
  text += "=\"";
  append_double(text, value);
  text += '"';
}

}  // namespace

void append_double(std::string& out, double value) {
  out += Digits(value).text();
}

void append_integer(std::string& out, std::uint64_t value) {
  out += Digits(value).text();
}

void append_label_value(std::string& out, std::string_view value) {
  std::size_t plain = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.substr(plain, i - plain));
    out += '\\';
    out += c == '\n' ? 'n' : c;
    plain = i + 1;
  }
  out.append(value.substr(plain));
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += "=\"";
  append_label_value(out, value);
  out += '"';
}

void append_family_head(std::string& out, std::string_view name, std::string_view help,
                        std::string_view type) {
  if (!help.empty()) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, help);
    out += '\n';
  }
  out += "# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_sample(std::string& out, const SeriesHead& series, double value) {
  append_series_line(out, series, {}, {}, Digits(value).text());
}

void append_count_and_sum(std::string& out, const SeriesHead& series, std::uint64_t count,
                          double sum) {
  append_series_line(out, series, "_count", {}, Digits(count).text());
  append_series_line(out, series, "_sum", {}, Digits(sum).text());
}

void append_bucket(std::string& out, const SeriesHead& series, std::string_view le,
                   std::uint64_t cumulative_count) {
  append_series_line(out, series, "_bucket", le, Digits(cumulative_count).text());
}

std::string_view BucketLabels::of(std::size_t bucket, double upper_bound) {
  if (bucket >= labels_.size()) labels_.resize(bucket + 1);
  auto& [bound, text] = labels_[bucket];
  // Bitwise: -0.0 == 0.0, but they print differently.
  if (text.empty() ||
      std::bit_cast<std::uint64_t>(bound) != std::bit_cast<std::uint64_t>(upper_bound)) {
    bound = upper_bound;
    render_extra(text, "le", upper_bound);
  }
  return text;
}

}  // namespace pgwd
