#include "daemon/metrics_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "daemon/prometheus_internals.hpp"

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

/// A series' labels as Collect() hands them out: constant labels first, then the series' own.
struct CollectedLabels {
  const std::vector<ClientMetric::Label>& labels;
  bool empty() const noexcept { return labels.empty(); }
  template <typename Visit>
  void each(Visit&& visit) const {
    for (const auto& label : labels) visit(label.name, label.value);
  }
};

/// A series' labels as a Family keeps them: the same two lists, in the same order.
struct FamilyLabels {
  const prometheus::Labels& constant;
  const prometheus::Labels& own;
  bool empty() const noexcept { return constant.empty() && own.empty(); }
  template <typename Visit>
  void each(Visit&& visit) const {
    for (const auto& [name, value] : constant) visit(name, value);
    for (const auto& [name, value] : own) visit(name, value);
  }
};

/// What starts each line of one series: the family's name and the series' labels.
template <typename Labels>
struct Series {
  std::string_view name;
  Labels labels;
  std::int64_t timestamp_ms = 0;
};

// "name{labels} ": the part of a sample line before its value.
template <typename Labels>
void append_head(std::string& out, const Series<Labels>& series, std::string_view suffix = {},
                 const ExtraLabel* extra = nullptr) {
  out += series.name;
  out += suffix;
  if (series.labels.empty() && !extra) {
    out += ' ';
    return;
  }
  out += '{';
  bool first = true;
  series.labels.each([&](std::string_view name, std::string_view value) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    append_label_value(out, value);
    out += '"';
  });
  if (extra) {
    if (!first) out += ',';
    out += extra->name;
    out += "=\"";
    append_double(out, extra->value);
    out += '"';
  }
  out += "} ";
}

template <typename Labels>
void append_tail(std::string& out, const Series<Labels>& series) {
  if (series.timestamp_ms != 0) {
    out += ' ';
    append_integer(out, series.timestamp_ms);
  }
  out += '\n';
}

template <typename Labels>
void append_sample(std::string& out, const Series<Labels>& series, double value) {
  append_head(out, series);
  append_double(out, value);
  append_tail(out, series);
}

template <typename Labels>
void append_count_and_sum(std::string& out, const Series<Labels>& series, std::uint64_t count,
                          double sum) {
  append_head(out, series, "_count");
  append_integer(out, count);
  append_tail(out, series);
  append_head(out, series, "_sum");
  append_double(out, sum);
  append_tail(out, series);
}

template <typename Labels>
void append_summary(std::string& out, const Series<Labels>& series,
                    const ClientMetric::Summary& summary) {
  append_count_and_sum(out, series, summary.sample_count, summary.sample_sum);
  for (const auto& quantile : summary.quantile) {
    const ExtraLabel label{"quantile", quantile.quantile};
    append_head(out, series, {}, &label);
    append_double(out, quantile.value);
    append_tail(out, series);
  }
}

template <typename Labels>
void append_histogram(std::string& out, const Series<Labels>& series,
                      const ClientMetric::Histogram& histogram) {
  append_count_and_sum(out, series, histogram.sample_count, histogram.sample_sum);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double last = -kInf;
  for (const auto& bucket : histogram.bucket) {
    const ExtraLabel label{"le", bucket.upper_bound};
    append_head(out, series, "_bucket", &label);
    last = bucket.upper_bound;
    append_integer(out, bucket.cumulative_count);
    append_tail(out, series);
  }
  // prometheus-cpp's histograms end with a +Inf bucket already; one that did not gets it here.
  if (last != kInf) {
    const ExtraLabel label{"le", kInf};
    append_head(out, series, "_bucket", &label);
    append_integer(out, histogram.sample_count);
    append_tail(out, series);
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

void append_family_head(std::string& out, std::string_view name, std::string_view help,
                        MetricType type) {
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
  out += type_name(type);
  out += '\n';
}

void append_collected_family(std::string& out, const MetricFamily& family) {
  append_family_head(out, family.name, family.help, family.type);
  for (const auto& metric : family.metric) {
    const Series<CollectedLabels> series{family.name, {metric.label}, metric.timestamp_ms};
    switch (family.type) {
      case MetricType::Counter: append_sample(out, series, metric.counter.value); break;
      case MetricType::Gauge: append_sample(out, series, metric.gauge.value); break;
      case MetricType::Untyped: append_sample(out, series, metric.untyped.value); break;
      case MetricType::Summary: append_summary(out, series, metric.summary); break;
      case MetricType::Histogram: append_histogram(out, series, metric.histogram); break;
    }
  }
}

// One family straight from its series, under its mutex, as Family::Collect() would copy them.
template <typename T>
void append_live_family(std::string& out, const prometheus::Family<T>& family) {
  namespace internals = prometheus_internals;
  const prometheus::Labels constant = family.GetConstantLabels();
  const std::lock_guard lock(internals::mutex_of(family));
  const auto& all = internals::series_of(family);
  if (all.empty()) return;  // as Family::Collect(): no HELP or TYPE either
  append_family_head(out, family.GetName(), internals::help_of(family), T::metric_type);
  for (const auto& [labels, metric] : all) {
    const Series<FamilyLabels> series{family.GetName(), {constant, labels}};
    if constexpr (std::is_same_v<T, prometheus::Histogram>)
      append_histogram(out, series, metric->Collect().histogram);
    else if constexpr (std::is_same_v<T, prometheus::Summary>)
      append_summary(out, series, metric->Collect().summary);
    else
      append_sample(out, series, metric->Value());
  }
}

template <typename T>
void append_live_families(std::string& out, const prometheus::Registry& registry) {
  for (const auto& family : prometheus_internals::families_of(registry, static_cast<T*>(nullptr)))
    append_live_family(out, *family);
}

}  // namespace

void append_text_exposition(const std::vector<MetricFamily>& families, std::string& out) {
  for (const auto& family : families) append_collected_family(out, family);
}

void append_registry_text(const prometheus::Registry& registry, std::string& out) {
  // Registry::Collect()'s order and locking: the registry's mutex, then each family's.
  const std::lock_guard lock(prometheus_internals::mutex_of(registry));
  append_live_families<prometheus::Counter>(out, registry);
  append_live_families<prometheus::Gauge>(out, registry);
  append_live_families<prometheus::Histogram>(out, registry);
  append_live_families<prometheus::Summary>(out, registry);
}

}  // namespace pgwd::daemon
