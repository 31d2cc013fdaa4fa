#include "support/metrics_reader.hpp"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "pgwd/prometheus_collectable.hpp"

namespace pgwd::testing {

double metric_value(const std::shared_ptr<const SeriesStore>& store, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  for (const prometheus::MetricFamily& family : prometheus_collectable(store)->Collect()) {
    std::string suffix;
    if (name == family.name)
      suffix = "";
    else if (name == family.name + "_count" || name == family.name + "_sum")
      suffix = name.substr(family.name.size());
    else
      continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return metric.counter.value;
        case prometheus::MetricType::Gauge:
          return metric.gauge.value;
        case prometheus::MetricType::Histogram:
          if (suffix == "_sum") return metric.histogram.sample_sum;
          return static_cast<double>(metric.histogram.sample_count);
        default:
          return -1;
      }
    }
  }
  return -1;
}

}  // namespace pgwd::testing
