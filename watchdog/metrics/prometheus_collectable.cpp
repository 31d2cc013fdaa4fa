#include "pgwd/prometheus_collectable.hpp"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <limits>
#include <stdexcept>

#include "metrics/exposition.hpp"
#include "metrics/store.hpp"

namespace pgwd {
namespace {

prometheus::MetricType prometheus_type(MetricType type) {
  switch (type) {
    case MetricType::counter:
      return prometheus::MetricType::Counter;
    case MetricType::gauge:
      return prometheus::MetricType::Gauge;
    case MetricType::histogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

/// prometheus-cpp's extension point: a Collectable builds the families of one scrape.
class StoreCollectable final : public prometheus::Collectable {
 public:
  explicit StoreCollectable(std::shared_ptr<const SeriesStore> store) : store_(std::move(store)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> collected;
    const auto rows = Store::of(*store_).snapshot();
    walk_by_family(
        rows,
        [&](const Family& family) {
          auto& f = collected.emplace_back();
          f.name = family.name;
          f.help = family.help;
          f.type = prometheus_type(family.type);
        },
        [&](const Row& row, const Series& series) {
          auto& metric = collected.back().metric.emplace_back();
          // The row's labels and the series' own, by name (as prometheus-cpp orders them).
          const std::size_t own_at = series.label_name.empty()
                                         ? row.labels().size()
                                         : row.labels_before(series.label_name);
          for (std::size_t i = 0; i <= row.labels().size(); ++i) {
            if (i == own_at && !series.label_name.empty())
              metric.label.push_back({std::string(series.label_name), series.label_value});
            if (i < row.labels().size())
              metric.label.push_back({row.labels()[i].first, row.labels()[i].second});
          }
          const double value = series.value.load(std::memory_order_relaxed);
          switch (series.family.type) {
            case MetricType::counter:
              metric.counter.value = value;
              break;
            case MetricType::gauge:
              metric.gauge.value = value;
              break;
            case MetricType::histogram: {
              const HistogramReading reading = read_histogram(series);
              const auto bounds = series.family.buckets;
              metric.histogram.sample_count = reading.cumulative.back();
              metric.histogram.sample_sum = reading.sum;
              for (std::size_t i = 0; i < reading.cumulative.size(); ++i)
                metric.histogram.bucket.push_back(
                    {reading.cumulative[i],
                     i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity()});
              break;
            }
          }
        });
    return collected;
  }

 private:
  std::shared_ptr<const SeriesStore> store_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> prometheus_collectable(
    std::shared_ptr<const SeriesStore> store) {
  if (!store) throw std::invalid_argument("prometheus_collectable: null store");
  return std::make_shared<StoreCollectable>(std::move(store));
}

}  // namespace pgwd
