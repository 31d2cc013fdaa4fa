#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgwd {

enum class MetricType { counter, gauge, histogram };

/// One metric family: what is written once above its series. Every family the library exports
/// is declared in metrics/families.hpp.
struct Family {
  std::size_t order;  ///< where it is written among the families; unique per family
  std::string_view name;
  std::string_view help;
  MetricType type;
  std::span<const double> buckets =
      {};  ///< a histogram's upper bounds, ascending, +Inf not included
};

/// A label, name and value.
using Label = std::pair<std::string, std::string>;

/// One series: its family, the label it has besides its row's (if any) and its value. A
/// counter or gauge is one atomic; a histogram one atomic per bucket and one for the sum, so
/// that a scrape reads it without a lock (and writes its count as the sum of its buckets, so
/// that count and buckets always agree).
struct Series {
  Series(const Family& family, std::string_view label_name, std::string label_value);
  Series(const Series&) = delete;
  Series& operator=(const Series&) = delete;

  const Family& family;
  std::string_view label_name;  ///< empty: only the row's labels
  std::string label_value;
  std::atomic<double> value{0};  ///< a counter's or gauge's; a histogram's sum
  /// A histogram's observations per bucket (not cumulative), the last one +Inf; else null.
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;
};

/// Handles to a series' value, for the series' owner: cheap to copy, valid while its row lives.
class Counter {
 public:
  Counter() = default;
  explicit Counter(Series& series) : series_(&series) {}
  explicit operator bool() const noexcept { return series_ != nullptr; }
  /// As a Prometheus counter: a negative amount is ignored.
  void increment(double by = 1) noexcept {
    if (by > 0) series_->value.fetch_add(by, std::memory_order_relaxed);
  }
  double value() const noexcept { return series_->value.load(std::memory_order_relaxed); }

 private:
  Series* series_ = nullptr;
};

class Gauge {
 public:
  Gauge() = default;
  explicit Gauge(Series& series) : series_(&series) {}
  explicit operator bool() const noexcept { return series_ != nullptr; }
  void set(double value) noexcept { series_->value.store(value, std::memory_order_relaxed); }
  void increment(double by = 1) noexcept {
    series_->value.fetch_add(by, std::memory_order_relaxed);
  }
  void decrement(double by = 1) noexcept { increment(-by); }
  double value() const noexcept { return series_->value.load(std::memory_order_relaxed); }

 private:
  Series* series_ = nullptr;
};

class Histogram {
 public:
  Histogram() = default;
  explicit Histogram(Series& series) : series_(&series) {}
  explicit operator bool() const noexcept { return series_ != nullptr; }
  /// Counted in the first bucket whose upper bound is at least `value` (+Inf if none).
  void observe(double value) noexcept;

 private:
  Series* series_ = nullptr;
};

/// The series of one owner (a target, a loop, a lending target, a pool), all sharing the row's
/// labels. Built on one thread (add its series, then Store::publish it), then only its values
/// change: a series added later goes into a row of its own.
class Row {
 public:
  explicit Row(std::vector<Label> labels);
  Row(const Row&) = delete;
  Row& operator=(const Row&) = delete;

  /// `label_name` must outlive the row (a literal).
  Counter counter(const Family& family, std::string_view label_name = {},
                  std::string label_value = {});
  Gauge gauge(const Family& family, std::string_view label_name = {}, std::string label_value = {});
  Histogram histogram(const Family& family, std::string_view label_name = {},
                      std::string label_value = {});

  /// Sorts the series by family, for the writers; Store::publish calls it.
  void seal();

  /// By name, as prometheus-cpp orders a series' labels (a std::map).
  const std::vector<Label>& labels() const noexcept { return labels_; }
  /// The row's labels rendered as in the text format: `target="a"`, escaped.
  const std::string& labels_text() const noexcept { return labels_text_; }
  /// How many of the row's labels sort before `name`: where a series' own label goes.
  std::size_t labels_before(std::string_view name) const noexcept;
  /// labels_text() split where a label called `name` goes among them: the rendered labels
  /// before it and after it, without the comma between.
  std::pair<std::string_view, std::string_view> labels_around(std::string_view name) const noexcept;
  /// Every series, by Family::order (after seal()).
  std::span<const Series* const> by_family() const noexcept { return by_family_; }

 private:
  Series& add(const Family& family, std::string_view label_name, std::string label_value);

  std::vector<Label> labels_;
  std::string labels_text_;
  std::vector<std::size_t> label_starts_;
  std::deque<Series> series_;  // a deque: adding never moves the series handed out
  std::vector<const Series*> by_family_;
};

}  // namespace pgwd
