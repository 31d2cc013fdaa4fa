#pragma once

/// \file
/// An Observer that keeps, per watched connection, what a benchmark waits on and times: its
/// backend pid, whether it is healthy, when it last went down and why, and how many probes the
/// watchdog sent. The callbacks run on the loop thread; the benchmark's driver thread reads and
/// waits (with a deadline, never a fixed sleep) from its own.
///
/// A waiter is woken once, when what it waits for holds: the callback that changed the record
/// checks the waiter's condition under the lock (a few comparisons; a hundred for a stop's
/// "every connection went down") and notifies only then. Notified on every event, the driver
/// thread woke ~100 times during a stop, each time taking the lock the next on_down needed,
/// on the same two cores as the loop it measured: the floor's thread wakes its waiter once a
/// batch.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pgwd/observer.hpp"

namespace pgwd::bench {

using Clock = std::chrono::steady_clock;

struct TrackedConnection {
  int backend_pid = 0;
  bool healthy = false;
  int downs = 0;
  Clock::time_point last_down{};
  /// When the loop callback that reported the last down began (set_callback_clock), else {}.
  Clock::time_point last_down_woken{};
  Cause last_cause = Cause::closed;
  /// Failed connect attempts since the last down (a connection that fails keeps reporting).
  int failures_since_down = 0;
};

class ConnectionTracker final : public Observer {
 public:
  /// A clock of the loop thread that on_down reads too: when the callback now running began
  /// (TimingLoop::callback_began). Set before the watchdog runs.
  void set_callback_clock(std::function<Clock::time_point()> began) {
    callback_began_ = std::move(began);
  }

  void on_healthy(const HealthyEvent& event) override;
  void on_down(const DownEvent& event) override;
  void on_probe(const ProbeEvent& event) override;
  void on_connect_failed(const ConnectFailedEvent& event) override;

  /// Waits until `done` holds on the connections of `target` (under the tracker's lock) or
  /// `timeout` passes; returns whether it held.
  bool wait_until(const std::string& target,
                  const std::function<bool(const std::vector<TrackedConnection>&)>& done,
                  std::chrono::milliseconds timeout);
  /// Waits until more than `count` downs were seen in all.
  bool wait_downs_above(std::uint64_t count, std::chrono::milliseconds timeout);
  /// Waits until at least `count` connect attempts failed in all.
  bool wait_connect_failures(std::uint64_t count, std::chrono::milliseconds timeout);
  /// Waits until `count` connections are healthy.
  bool wait_healthy(int count, std::chrono::milliseconds timeout);
  /// A copy of the record of connection `index` of `target`.
  TrackedConnection connection(const std::string& target, int index);
  std::vector<TrackedConnection> connections(const std::string& target);
  int healthy_count();
  /// Round trips reported by on_probe, all of them and those of the targets' heartbeats.
  std::uint64_t probes();
  std::uint64_t heartbeats();
  std::uint64_t downs();
  /// What a benchmark that gave up waiting says: healthy and down connections, downs by cause,
  /// failed connect attempts by cause and the last one's message, and the connections that never
  /// reported anything since their last down (no attempt failed, none came back).
  std::string summary();

 private:
  TrackedConnection& slot(const ConnectionRef& ref);  // caller holds mutex_
  /// Waits until `holds` (called under mutex_) is true or `timeout` passes.
  bool wait(const std::function<bool()>& holds, std::chrono::milliseconds timeout);
  /// After a change, under `lock`: wakes the waiters whose condition now holds.
  void changed(std::unique_lock<std::mutex>& lock);

  std::function<Clock::time_point()> callback_began_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<const std::function<bool()>*> waiting_;  // the conditions of threads in wait()
  std::map<std::string, std::vector<TrackedConnection>> connections_;  // by target
  int healthy_ = 0;
  std::uint64_t probes_ = 0;
  std::uint64_t heartbeats_ = 0;
  std::uint64_t downs_ = 0;
  std::uint64_t connect_failures_ = 0;
  std::map<std::string, std::uint64_t> failures_by_cause_;
  std::string last_failure_;
};

}  // namespace pgwd::bench
