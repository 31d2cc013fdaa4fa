#include "metrics/exposition.hpp"

#include <atomic>
#include <limits>

#include "metrics/text_format.hpp"

namespace pgwd {

HistogramReading read_histogram(const Series& series) {
  HistogramReading reading;
  const std::size_t buckets = series.family.buckets.size() + 1;
  reading.cumulative.reserve(buckets);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    total += series.buckets[i].load(std::memory_order_relaxed);
    reading.cumulative.push_back(total);
  }
  reading.sum = series.value.load(std::memory_order_relaxed);
  return reading;
}

std::string_view type_name(MetricType type) noexcept {
  switch (type) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::histogram:
      return "histogram";
  }
  return "untyped";
}

std::string_view render_labels(const Row& row, const Series& series, std::string& buffer) {
  if (series.label_name.empty()) return row.labels_text();
  const auto [before, after] = row.labels_around(series.label_name);
  buffer.assign(before);
  if (!before.empty()) buffer += ',';
  append_label(buffer, series.label_name, series.label_value);
  if (!after.empty()) {
    buffer += ',';
    buffer += after;
  }
  return buffer;
}

void append_exposition(RowSnapshot rows, std::string& out) {
  std::string labels;
  BucketLabels le;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  walk_by_family(
      rows,
      [&](const Family& family) {
        append_family_head(out, family.name, family.help, type_name(family.type));
        le = BucketLabels();
      },
      [&](const Row& row, const Series& series) {
        const SeriesHead head{series.family.name, render_labels(row, series, labels)};
        if (series.family.type != MetricType::histogram) {
          append_sample(out, head, series.value.load(std::memory_order_relaxed));
          return;
        }
        const HistogramReading reading = read_histogram(series);
        append_count_and_sum(out, head, reading.cumulative.back(), reading.sum);
        const auto bounds = series.family.buckets;
        for (std::size_t i = 0; i < reading.cumulative.size(); ++i)
          append_bucket(out, head, le.of(i, i < bounds.size() ? bounds[i] : kInf),
                        reading.cumulative[i]);
      });
}

}  // namespace pgwd
