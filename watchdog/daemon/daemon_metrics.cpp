#include "daemon/daemon_metrics.hpp"

#include <new>
#include <string>

namespace pgwd::daemon {
namespace {

prometheus::Labels shard_labels(const std::optional<Shard>& shard) {
  const Shard s = shard.value_or(Shard{});
  return {{"shard", std::to_string(s.index)}, {"total_shards", std::to_string(s.total)}};
}

}  // namespace

DaemonMetrics::DaemonMetrics(prometheus::Registry& registry, event_base* base,
                             const std::optional<Shard>& shard,
                             std::function<std::uint64_t()> dropped_lines)
    : shard_info_(prometheus::BuildGauge()
                      .Name("pgwatchdog_shard_info")
                      .Help("Which shard of the targets this process watches (--shard, "
                            "--total-shards); always 1")
                      .Register(registry)
                      .Add(shard_labels(shard))),
      shard_targets_(prometheus::BuildGauge()
                         .Name("pgwatchdog_shard_targets")
                         .Help("Targets this process watches: those of the config that hash to "
                               "its shard")
                         .Register(registry)
                         .Add({})),
      log_dropped_(prometheus::BuildCounter()
                       .Name("pgwatchdog_log_messages_dropped_total")
                       .Help("Log lines dropped because stderr did not take them fast enough "
                             "(the log queue was full)")
                       .Register(registry)
                       .Add({})),
      dropped_lines_(std::move(dropped_lines)),
      sampler_(event_new(base, -1, EV_PERSIST, &DaemonMetrics::on_sample, this)) {
  shard_info_.Set(1);
  const timeval interval = to_timeval(kDropSampleInterval);
  if (!sampler_ || event_add(sampler_.get(), &interval) != 0) throw std::bad_alloc();
}

void DaemonMetrics::set_shard_targets(std::size_t count) {
  shard_targets_.Set(static_cast<double>(count));
}

void DaemonMetrics::on_sample(evutil_socket_t, short, void* self) {
  static_cast<DaemonMetrics*>(self)->sample();
}

void DaemonMetrics::sample() {
  const std::uint64_t dropped = dropped_lines_();
  if (dropped > dropped_seen_) log_dropped_.Increment(static_cast<double>(dropped - dropped_seen_));
  dropped_seen_ = dropped;
}

}  // namespace pgwd::daemon
