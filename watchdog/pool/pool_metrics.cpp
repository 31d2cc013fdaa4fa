#include "pool/pool_metrics.hpp"

namespace pgwd {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const prometheus::Histogram::BucketBoundaries& PoolMetrics::acquire_buckets() {
  // From "an idle connection was there" (microseconds) to "waited for one to be opened or
  // returned" (milliseconds to the acquire timeout).
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
  return buckets;
}

PoolMetrics::PoolMetrics(std::shared_ptr<prometheus::Registry> registry, const std::string& pool)
    : registry_(std::move(registry)),
      pool_(pool),
      connections_(BuildGauge()
                       .Name("pgwatchdog_pool_connections")
                       .Help("Connections of a pgwd::Pool per state: idle (lent to the "
                             "watchdog), in_use (leased), opening")
                       .Register(*registry_)),
      waiters_family_(BuildGauge()
                          .Name("pgwatchdog_pool_waiters")
                          .Help("acquire() calls of a pgwd::Pool waiting for a connection")
                          .Register(*registry_)),
      acquire_family_(BuildHistogram()
                          .Name("pgwatchdog_pool_acquire_seconds")
                          .Help("Time acquire() took to hand out a connection")
                          .Register(*registry_)),
      found_dead_family_(BuildCounter()
                             .Name("pgwatchdog_pool_checkouts_found_dead_total")
                             .Help("Checkouts whose take-back said dead (another connection "
                                   "was handed out instead)")
                             .Register(*registry_)),
      replaced_family_(BuildCounter()
                           .Name("pgwatchdog_pool_replaced_total")
                           .Help("Connections a pgwd::Pool closed, by cause")
                           .Register(*registry_)),
      idle_(connections_.Add({{"pool", pool}, {"state", "idle"}})),
      in_use_(connections_.Add({{"pool", pool}, {"state", "in_use"}})),
      opening_(connections_.Add({{"pool", pool}, {"state", "opening"}})),
      waiters_(waiters_family_.Add({{"pool", pool}})),
      acquire_(acquire_family_.Add({{"pool", pool}}, acquire_buckets())),
      found_dead_(found_dead_family_.Add({{"pool", pool}})) {}

PoolMetrics::~PoolMetrics() {
  connections_.Remove(&idle_);
  connections_.Remove(&in_use_);
  connections_.Remove(&opening_);
  waiters_family_.Remove(&waiters_);
  acquire_family_.Remove(&acquire_);
  found_dead_family_.Remove(&found_dead_);
  for (auto& [cause, counter] : replaced_) replaced_family_.Remove(counter);
}

void PoolMetrics::set_sizes(std::size_t idle, std::size_t in_use, std::size_t opening,
                            std::size_t waiters) {
  idle_.Set(static_cast<double>(idle));
  in_use_.Set(static_cast<double>(in_use));
  opening_.Set(static_cast<double>(opening));
  waiters_.Set(static_cast<double>(waiters));
}

void PoolMetrics::observe_acquire(double seconds) { acquire_.Observe(seconds); }

void PoolMetrics::count_found_dead() { found_dead_.Increment(); }

void PoolMetrics::count_replaced(std::string_view cause) {
  const std::lock_guard lock(replaced_mutex_);
  auto found = replaced_.find(cause);
  if (found == replaced_.end()) {
    found = replaced_
                .emplace(std::string(cause),
                         &replaced_family_.Add({{"pool", pool_}, {"cause", std::string(cause)}}))
                .first;
  }
  found->second->Increment();
}

}  // namespace pgwd
