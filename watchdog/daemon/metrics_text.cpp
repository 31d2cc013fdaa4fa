#include "daemon/metrics_text.hpp"

#include <bit>
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
    written = std::to_chars(std::begin(digits), std::end(digits), value, std::chars_format::general,
                            kPrecision);
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

// A series' labels, escaped and comma-separated (`a="x",b="y"`), rendered once per series:
// a histogram writes them on each of its lines.
void render_labels(std::string& text, const std::vector<ClientMetric::Label>& labels) {
  text.clear();
  for (const auto& label : labels) {
    if (!text.empty()) text += ',';
    text += label.name;
    text += "=\"";
    append_label_value(text, label.value);
    text += '"';
  }
}

// A Family's series: its constant labels, then the series' own, as Collect() lists them.
void render_labels(std::string& text, const prometheus::Labels& constant,
                   const prometheus::Labels& own) {
  text.clear();
  for (const auto* labels : {&constant, &own})
    for (const auto& [name, value] : *labels) {
      if (!text.empty()) text += ',';
      text += name;
      text += "=\"";
      append_label_value(text, value);
      text += '"';
    }
}

/// What every line of one series starts with.
struct Series {
  std::string_view name;
  std::string_view labels;  // rendered
  std::int64_t timestamp_ms = 0;
};

/// The extra label of a histogram bucket (`le="0.25"`) or a summary quantile, rendered.
void render_extra(std::string& text, std::string_view name, double value) {
  text.clear();
  text += name;
  text += "=\"";
  append_double(text, value);
  text += '"';
}

/// The `le` labels of one family's histograms, which share their bucket bounds: formatting a
/// double takes longer than copying it, and a family has thousands of buckets.
class BucketLabels {
 public:
  std::string_view of(std::size_t bucket, double upper_bound) {
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

 private:
  std::vector<std::pair<double, std::string>> labels_;
};

// "name{labels} ": the part of a sample line before its value.
void append_head(std::string& out, const Series& series, std::string_view suffix = {},
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

void append_tail(std::string& out, const Series& series) {
  if (series.timestamp_ms != 0) {
    out += ' ';
    append_integer(out, series.timestamp_ms);
  }
  out += '\n';
}

void append_sample(std::string& out, const Series& series, double value) {
  append_head(out, series);
  append_double(out, value);
  append_tail(out, series);
}

void append_count_and_sum(std::string& out, const Series& series, std::uint64_t count, double sum) {
  append_head(out, series, "_count");
  append_integer(out, count);
  append_tail(out, series);
  append_head(out, series, "_sum");
  append_double(out, sum);
  append_tail(out, series);
}

void append_summary(std::string& out, const Series& series, const ClientMetric::Summary& summary) {
  append_count_and_sum(out, series, summary.sample_count, summary.sample_sum);
  std::string label;
  for (const auto& quantile : summary.quantile) {
    render_extra(label, "quantile", quantile.quantile);
    append_head(out, series, {}, label);
    append_double(out, quantile.value);
    append_tail(out, series);
  }
}

void append_histogram(std::string& out, const Series& series,
                      const ClientMetric::Histogram& histogram, BucketLabels& le) {
  append_count_and_sum(out, series, histogram.sample_count, histogram.sample_sum);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double last = -kInf;
  for (std::size_t i = 0; i < histogram.bucket.size(); ++i) {
    const auto& bucket = histogram.bucket[i];
    append_head(out, series, "_bucket", le.of(i, bucket.upper_bound));
    last = bucket.upper_bound;
    append_integer(out, bucket.cumulative_count);
    append_tail(out, series);
  }
  // prometheus-cpp's histograms end with a +Inf bucket already; one that did not gets it here.
  if (last != kInf) {
    append_head(out, series, "_bucket", le.of(histogram.bucket.size(), kInf));
    append_integer(out, histogram.sample_count);
    append_tail(out, series);
  }
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Summary:
      return "summary";
    case MetricType::Untyped:
      return "untyped";
    case MetricType::Histogram:
      return "histogram";
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
  std::string labels;
  BucketLabels le;
  for (const auto& metric : family.metric) {
    render_labels(labels, metric.label);
    const Series series{family.name, labels, metric.timestamp_ms};
    switch (family.type) {
      case MetricType::Counter:
        append_sample(out, series, metric.counter.value);
        break;
      case MetricType::Gauge:
        append_sample(out, series, metric.gauge.value);
        break;
      case MetricType::Untyped:
        append_sample(out, series, metric.untyped.value);
        break;
      case MetricType::Summary:
        append_summary(out, series, metric.summary);
        break;
      case MetricType::Histogram:
        append_histogram(out, series, metric.histogram, le);
        break;
    }
  }
}

// One family straight from its series, under its mutex, as Family::Collect() would copy them.
template <typename T>
void append_live_family(std::string& out, const prometheus::Family<T>& family) {
  namespace internals = prometheus_internals;
  const prometheus::Labels constant = family.GetConstantLabels();
  std::string labels;
  BucketLabels le;
  const std::lock_guard lock(internals::mutex_of(family));
  const auto& all = internals::series_of(family);
  if (all.empty()) return;  // as Family::Collect(): no HELP or TYPE either
  append_family_head(out, family.GetName(), internals::help_of(family), T::metric_type);
  for (const auto& [own, metric] : all) {
    render_labels(labels, constant, own);
    const Series series{family.GetName(), labels};
    if constexpr (std::is_same_v<T, prometheus::Histogram>)
      append_histogram(out, series, metric->Collect().histogram, le);
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
