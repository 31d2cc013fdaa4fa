#include "metrics/series.hpp"

#include "metrics/text_format.hpp"

namespace pgwd {

Series::Series(const Family& f, std::string_view name, std::string label)
    : family(f), label_name(name), label_value(std::move(label)) {
  if (family.type == MetricType::histogram)
    buckets = std::make_unique<std::atomic<std::uint64_t>[]>(family.buckets.size() + 1);
}

void Histogram::observe(double value) noexcept {
  const auto bounds = series_->family.buckets;
  const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  series_->buckets[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  series_->value.fetch_add(value, std::memory_order_relaxed);
}

Row::Row(std::vector<Label> labels) : labels_(std::move(labels)) {
  std::sort(labels_.begin(), labels_.end(),
            [](const Label& a, const Label& b) { return a.first < b.first; });
  for (const auto& [name, value] : labels_) {
    if (!labels_text_.empty()) labels_text_ += ',';
    label_starts_.push_back(labels_text_.size());
    append_label(labels_text_, name, value);
  }
}

std::size_t Row::labels_before(std::string_view name) const noexcept {
  std::size_t before = 0;
  while (before < labels_.size() && labels_[before].first < name) ++before;
  return before;
}

std::pair<std::string_view, std::string_view> Row::labels_around(
    std::string_view name) const noexcept {
  const std::string_view all = labels_text_;
  const std::size_t before = labels_before(name);
  if (before == 0) return {{}, all};
  if (before == label_starts_.size()) return {all, {}};
  const std::size_t at = label_starts_[before];  // just after the comma that ends label before-1
  return {all.substr(0, at - 1), all.substr(at)};
}

Series& Row::add(const Family& family, std::string_view label_name, std::string label_value) {
  return series_.emplace_back(family, label_name, std::move(label_value));
}

Counter Row::counter(const Family& family, std::string_view name, std::string value) {
  return Counter(add(family, name, std::move(value)));
}

Gauge Row::gauge(const Family& family, std::string_view name, std::string value) {
  return Gauge(add(family, name, std::move(value)));
}

Histogram Row::histogram(const Family& family, std::string_view name, std::string value) {
  return Histogram(add(family, name, std::move(value)));
}

void Row::seal() {
  by_family_.clear();
  by_family_.reserve(series_.size());
  for (const Series& s : series_) by_family_.push_back(&s);
  std::stable_sort(by_family_.begin(), by_family_.end(), [](const Series* a, const Series* b) {
    return a->family.order < b->family.order;
  });
}

}  // namespace pgwd
