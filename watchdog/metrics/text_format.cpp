#include "metrics/text_format.hpp"

#include <bit>
#include <charconv>
#include <cmath>
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

// "name{labels} ": the part of a sample line before its value.
void append_head(std::string& out, const SeriesHead& series, std::string_view suffix = {},
                 std::string_view extra = {}) {
  out += series.name;
  out += suffix;
  if (series.labels.empty() && extra.empty()) {
    out += ' ';
    return;
  }
  out += '{';
  out += series.labels;
  if (!extra.empty()) {
    if (!series.labels.empty()) out += ',';
    out += extra;
  }
  out += "} ";
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
  if (std::isnan(value)) {
    out += "Nan";
    return;
  }
  if (std::isinf(value)) {
    out += value < 0 ? "-Inf" : "+Inf";
    return;
  }
  char digits[32];
  std::to_chars_result written{};
  if (std::fabs(value) < kIntegralFastPathLimit && value == std::trunc(value) &&
      !(value == 0 && std::signbit(value)))
    written = std::to_chars(std::begin(digits), std::end(digits), static_cast<std::int64_t>(value));
  else
    written = std::to_chars(std::begin(digits), std::end(digits), value, std::chars_format::general,
                            kPrecision);
  out.append(digits, written.ptr);
}

void append_integer(std::string& out, std::uint64_t value) {
  char digits[24];
  out.append(digits, std::to_chars(std::begin(digits), std::end(digits), value).ptr);
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
  append_head(out, series);
  append_double(out, value);
  out += '\n';
}

void append_count_and_sum(std::string& out, const SeriesHead& series, std::uint64_t count,
                          double sum) {
  append_head(out, series, "_count");
  append_integer(out, count);
  out += '\n';
  append_head(out, series, "_sum");
  append_double(out, sum);
  out += '\n';
}

void append_bucket(std::string& out, const SeriesHead& series, std::string_view le,
                   std::uint64_t cumulative_count) {
  append_head(out, series, "_bucket", le);
  append_integer(out, cumulative_count);
  out += '\n';
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
