#include "pool/pool_series.hpp"

#include "metrics/families.hpp"

namespace pgwd {

PoolSeries::PoolSeries(Store& store, const std::string& pool) : store_(store), pool_(pool) {
  auto row = std::make_shared<Row>(std::vector<Label>{{"pool", pool}});
  idle_ = row->gauge(families::pool_connections, "state", "idle");
  in_use_ = row->gauge(families::pool_connections, "state", "in_use");
  opening_ = row->gauge(families::pool_connections, "state", "opening");
  waiters_ = row->gauge(families::pool_waiters);
  acquire_ = row->histogram(families::pool_acquire);
  found_dead_ = row->counter(families::pool_found_dead);
  given_to_next_asker_ = row->counter(families::pool_given_to_next_asker);
  row_ = store.publish(std::move(row));
}

void PoolSeries::set_sizes(std::size_t idle, std::size_t in_use, std::size_t opening,
                           std::size_t waiters) {
  idle_.set(static_cast<double>(idle));
  in_use_.set(static_cast<double>(in_use));
  opening_.set(static_cast<double>(opening));
  waiters_.set(static_cast<double>(waiters));
}

void PoolSeries::count_replaced(std::string_view cause) {
  const std::lock_guard lock(replaced_mutex_);
  auto found = replaced_.find(cause);
  if (found == replaced_.end()) {
    auto row = std::make_shared<Row>(std::vector<Label>{{"pool", pool_}});
    const Counter counter = row->counter(families::pool_replaced, "cause", std::string(cause));
    replaced_rows_.push_back(store_.publish(std::move(row)));
    found = replaced_.emplace(std::string(cause), counter).first;
  }
  found->second.increment();
}

}  // namespace pgwd
