#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "daemon/sharding.hpp"
#include "event/libevent/event_ptr.hpp"
#include "metrics/store.hpp"

namespace pgwd::daemon {

/// The daemon's own series, in two rows of the store (their families are in
/// metrics/families.hpp with the library's):
///   pgwatchdog_shard_info{shard, total_shards}  1; shard="0", total_shards="1" without sharding
///   pgwatchdog_shard_targets                    the targets this process watches
///   pgwatchdog_log_messages_dropped_total       log lines dropped because stderr did not keep up
/// The dropped count is sampled from the log on a loop timer (every kDropSampleInterval), so a
/// scrape never touches the log. Loop-bound: every method on the loop thread.
class DaemonMetrics {
 public:
  static constexpr std::chrono::milliseconds kDropSampleInterval{250};

  DaemonMetrics(Store& store, event_base* base, const std::optional<Shard>& shard,
                std::function<std::uint64_t()> dropped_lines);
  DaemonMetrics(const DaemonMetrics&) = delete;
  DaemonMetrics& operator=(const DaemonMetrics&) = delete;

  void set_shard_targets(std::size_t count);

 private:
  static void on_sample(evutil_socket_t, short, void* self);
  void sample();

  Gauge shard_targets_;
  Counter log_dropped_;
  RowHandle info_row_;  // shard_info, labelled shard and total_shards
  RowHandle row_;       // the other two, unlabelled
  std::function<std::uint64_t()> dropped_lines_;
  std::uint64_t dropped_seen_ = 0;
  EventPtr sampler_;
};

}  // namespace pgwd::daemon
