#include "daemon/daemon_metrics.hpp"

#include <new>
#include <string>

#include "metrics/families.hpp"

namespace pgwd::daemon {

DaemonMetrics::DaemonMetrics(Store& store, event_base* base, const std::optional<Shard>& shard,
                             std::function<std::uint64_t()> dropped_lines)
    : dropped_lines_(std::move(dropped_lines)),
      sampler_(event_new(base, -1, EV_PERSIST, &DaemonMetrics::on_sample, this)) {
  // shard_info has labels of its own, the other two none: two rows.
  const Shard s = shard.value_or(Shard{});
  auto info = std::make_shared<Row>(std::vector<Label>{{"shard", std::to_string(s.index)},
                                                       {"total_shards", std::to_string(s.total)}});
  info->gauge(families::shard_info).set(1);
  auto own = std::make_shared<Row>(std::vector<Label>{});
  shard_targets_ = own->gauge(families::shard_targets);
  log_dropped_ = own->counter(families::log_messages_dropped);
  info_row_ = store.publish(std::move(info));
  row_ = store.publish(std::move(own));
  const timeval interval = to_timeval(kDropSampleInterval);
  if (!sampler_ || event_add(sampler_.get(), &interval) != 0) throw std::bad_alloc();
}

void DaemonMetrics::set_shard_targets(std::size_t count) {
  shard_targets_.set(static_cast<double>(count));
}

void DaemonMetrics::on_sample(evutil_socket_t, short, void* self) {
  static_cast<DaemonMetrics*>(self)->sample();
}

void DaemonMetrics::sample() {
  const std::uint64_t dropped = dropped_lines_();
  if (dropped > dropped_seen_) log_dropped_.increment(static_cast<double>(dropped - dropped_seen_));
  dropped_seen_ = dropped;
}

}  // namespace pgwd::daemon
