#include "daemon/metrics_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <system_error>

namespace pgwd::daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// TextSerializer sets the stream's precision to max_digits10 - 1 and keeps the default float
// field: printf's %.16g, which std::to_chars reproduces with chars_format::general.
constexpr int kPrecision = std::numeric_limits<double>::max_digits10 - 1;

// Integral values below this print the same in %.16g as as integers (no exponent, no digits
// lost), and most series are counters and gauges holding small integers: the fast path.
constexpr double kIntegralFastPathLimit = 1e15;

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
    written = std::to_chars(std::begin(digits), std::end(digits), value,
                            std::chars_format::general, kPrecision);
  out.append(digits, written.ptr);
}

template <typename Integer>
void append_integer(std::string& out, Integer value) {
  char digits[24];
  out.append(digits, std::to_chars(std::begin(digits), std::end(digits), value).ptr);
}

// Label values: backslash, double quote and line feed are escaped (format 0.0.4).
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

/// The extra label of a histogram bucket (`le`) or a summary quantile (`quantile`).
struct ExtraLabel {
  std::string_view name;
  double value;
};

// "name{labels} ": the part of a sample line before its value.
void append_head(std::string& out, const MetricFamily& family, const ClientMetric& metric,
                 std::string_view suffix = {}, const ExtraLabel* extra = nullptr) {
  out += family.name;
  out += suffix;
  if (!metric.label.empty() || extra) {
    out += '{';
    bool first = true;
    for (const auto& label : metric.label) {
      if (!first) out += ',';
      first = false;
      out += label.name;
      out += "=\"";
      append_label_value(out, label.value);
      out += '"';
    }
    if (extra) {
      if (!first) out += ',';
      out += extra->name;
      out += "=\"";
      append_double(out, extra->value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
}

void append_tail(std::string& out, const ClientMetric& metric) {
  if (metric.timestamp_ms != 0) {
    out += ' ';
    append_integer(out, metric.timestamp_ms);
  }
  out += '\n';
}

void append_sample(std::string& out, const MetricFamily& family, const ClientMetric& metric,
                   double value) {
  append_head(out, family, metric);
  append_double(out, value);
  append_tail(out, metric);
}

void append_count_and_sum(std::string& out, const MetricFamily& family, const ClientMetric& metric,
                          std::uint64_t count, double sum) {
  append_head(out, family, metric, "_count");
  append_integer(out, count);
  append_tail(out, metric);
  append_head(out, family, metric, "_sum");
  append_double(out, sum);
  append_tail(out, metric);
}

void append_summary(std::string& out, const MetricFamily& family, const ClientMetric& metric) {
  const auto& summary = metric.summary;
  append_count_and_sum(out, family, metric, summary.sample_count, summary.sample_sum);
  for (const auto& quantile : summary.quantile) {
    const ExtraLabel label{"quantile", quantile.quantile};
    append_head(out, family, metric, {}, &label);
    append_double(out, quantile.value);
    append_tail(out, metric);
  }
}

void append_histogram(std::string& out, const MetricFamily& family, const ClientMetric& metric) {
  const auto& histogram = metric.histogram;
  append_count_and_sum(out, family, metric, histogram.sample_count, histogram.sample_sum);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double last = -kInf;
  for (const auto& bucket : histogram.bucket) {
    const ExtraLabel label{"le", bucket.upper_bound};
    append_head(out, family, metric, "_bucket", &label);
    last = bucket.upper_bound;
    append_integer(out, bucket.cumulative_count);
    append_tail(out, metric);
  }
  // prometheus-cpp's histograms end with a +Inf bucket already; one that did not gets it here.
  if (last != kInf) {
    const ExtraLabel label{"le", kInf};
    append_head(out, family, metric, "_bucket", &label);
    append_integer(out, histogram.sample_count);
    append_tail(out, metric);
  }
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Summary: return "summary";
    case MetricType::Untyped: return "untyped";
    case MetricType::Histogram: return "histogram";
  }
  return "untyped";
}

void append_family(std::string& out, const MetricFamily& family) {
  if (!family.help.empty()) {
    out += "# HELP ";
    out += family.name;
    out += ' ';
    append_help(out, family.help);
    out += '\n';
  }
  out += "# TYPE ";
  out += family.name;
  out += ' ';
  out += type_name(family.type);
  out += '\n';
  for (const auto& metric : family.metric) {
    switch (family.type) {
      case MetricType::Counter: append_sample(out, family, metric, metric.counter.value); break;
      case MetricType::Gauge: append_sample(out, family, metric, metric.gauge.value); break;
      case MetricType::Untyped: append_sample(out, family, metric, metric.untyped.value); break;
      case MetricType::Summary: append_summary(out, family, metric); break;
      case MetricType::Histogram: append_histogram(out, family, metric); break;
    }
  }
}

}  // namespace

void append_text_exposition(const std::vector<MetricFamily>& families, std::string& out) {
  for (const auto& family : families) append_family(out, family);
}

}  // namespace pgwd::daemon
