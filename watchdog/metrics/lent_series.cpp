#include "metrics/lent_series.hpp"

#include "metrics/families.hpp"

namespace pgwd {

LentSeries::LentSeries(Store& store, std::string target)
    : store_(store), target_(std::move(target)) {
  auto row = std::make_shared<Row>(std::vector<Label>{{"target", target_}});
  lent_ = row->gauge(families::lent_connections);
  probes_ = row->counter(families::lent_probes);
  notifications_ = row->counter(families::lent_notifications);
  server_lost_ = row->counter(families::server_lost);
  row_ = store.publish(std::move(row));
}

Counter& LentSeries::death(std::string_view cause) {
  return labelled(deaths_, families::lent_deaths, "cause", cause);
}

Counter& LentSeries::take_back(std::string_view verdict) {
  return labelled(take_backs_, families::lent_take_backs, "verdict", verdict);
}

Counter& LentSeries::labelled(std::map<std::string, Counter, std::less<>>& series,
                              const Family& family, std::string_view label,
                              std::string_view value) {
  auto found = series.find(value);
  if (found != series.end()) return found->second;
  auto row = std::make_shared<Row>(std::vector<Label>{{"target", target_}});
  const Counter counter = row->counter(family, label, std::string(value));
  late_rows_.push_back(store_.publish(std::move(row)));
  return series.emplace(std::string(value), counter).first->second;
}

}  // namespace pgwd
