#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/family.h>
#include <prometheus/labels.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pgwd {

/// Removes many series of one prometheus::Family at once, in O(family size + series removed).
///
/// Why: prometheus-cpp's Family::Remove(T*) searches the family's series from the first one on
/// (1.0.1, family.cc: find_if over its unordered_map), so removing a fleet's series one by one
/// costs O(n²): 71.5 s for 10,000 targets at SIGTERM. Removing them in the family's own
/// iteration order (read from Collect()) makes each search stop at the first series it visits
/// that is not yet removed: an unordered_map erase keeps the relative order of the elements it
/// leaves ([unord.req]) and never rehashes. A series added meanwhile (another Watchdog on the
/// same registry) only lengthens the searches that pass it; every series given is removed.
/// Thread-safe as the Family is; not meant to be shared between threads itself.
template <typename T>
class SeriesSweep {
 public:
  explicit SeriesSweep(prometheus::Family<T>& family) : family_(family) {}
  SeriesSweep(const SeriesSweep&) = delete;
  SeriesSweep& operator=(const SeriesSweep&) = delete;

  using Label = std::pair<std::string_view, std::string_view>;  // name, value

  /// `labels` exactly as given to Family::Add for `series`, in any order.
  void add(std::initializer_list<Label> labels, T* series) {
    std::array<Label, kMaxLabels> sorted{};
    if (labels.size() > sorted.size()) throw std::logic_error("SeriesSweep: too many labels");
    std::size_t n = 0;
    for (const Label& label : labels) {  // insertion sort: a handful of labels
      std::size_t at = n++;
      for (; at > 0 && label < sorted[at - 1]; --at) sorted[at] = sorted[at - 1];
      sorted[at] = label;
    }
    std::string k;
    for (std::size_t i = 0; i < n; ++i) append(k, sorted[i].first, sorted[i].second);
    doomed_.emplace(std::move(k), series);
  }

  /// Removes every series added. Returns how many of them were found in iteration order (the
  /// rest, added to the family after its Collect(), were removed with a full search).
  std::size_t run() {
    std::size_t in_order = 0;
    std::vector<const prometheus::ClientMetric::Label*> sorted;
    std::string k;
    for (const prometheus::MetricFamily& collected : family_.Collect()) {
      for (const prometheus::ClientMetric& metric : collected.metric) {
        if (doomed_.empty()) break;
        sorted.clear();
        for (const auto& label : metric.label) sorted.push_back(&label);
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto* a, const auto* b) { return a->name < b->name; });
        k.clear();
        for (const auto* label : sorted) append(k, label->name, label->value);
        const auto it = doomed_.find(k);
        if (it == doomed_.end()) continue;
        family_.Remove(it->second);
        doomed_.erase(it);
        ++in_order;
      }
    }
    for (const auto& [labels, series] : doomed_) family_.Remove(series);
    doomed_.clear();
    return in_order;
  }

 private:
  /// Length-prefixed, so that two different label sets never make the same key.
  static constexpr std::size_t kMaxLabels = 4;

  static void append(std::string& key, std::string_view name, std::string_view value) {
    key += std::to_string(name.size());
    key += ':';
    key += name;
    key += std::to_string(value.size());
    key += ':';
    key += value;
  }

  prometheus::Family<T>& family_;
  std::unordered_map<std::string, T*> doomed_;  // by the key of its labels
};

}  // namespace pgwd
