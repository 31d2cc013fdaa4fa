#include "daemon/metrics_text.hpp"

#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "daemon/prometheus_internals.hpp"
#include "metrics/text_format.hpp"

namespace pgwd::daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Series = SeriesHead;

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

void append_summary(std::string& out, const Series& series, const ClientMetric::Summary& summary) {
  append_count_and_sum(out, series, summary.sample_count, summary.sample_sum);
  for (const auto& quantile : summary.quantile)
    append_quantile(out, series, quantile.quantile, quantile.value);
}

void append_histogram(std::string& out, const Series& series,
                      const ClientMetric::Histogram& histogram, BucketLabels& le) {
  append_count_and_sum(out, series, histogram.sample_count, histogram.sample_sum);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double last = -kInf;
  for (std::size_t i = 0; i < histogram.bucket.size(); ++i) {
    const auto& bucket = histogram.bucket[i];
    append_bucket(out, series, le.of(i, bucket.upper_bound), bucket.cumulative_count);
    last = bucket.upper_bound;
  }
  // prometheus-cpp's histograms end with a +Inf bucket already; one that did not gets it here.
  if (last != kInf) {
    append_bucket(out, series, le.of(histogram.bucket.size(), kInf), histogram.sample_count);
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

void append_collected_family(std::string& out, const MetricFamily& family) {
  append_family_head(out, family.name, family.help, type_name(family.type));
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
  append_family_head(out, family.GetName(), internals::help_of(family), type_name(T::metric_type));
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
