#include "support/connection_tracker.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace pgwd::bench {

TrackedConnection& ConnectionTracker::slot(const ConnectionRef& ref) {
  std::vector<TrackedConnection>& target = connections_[ref.target];
  if (static_cast<std::size_t>(ref.index) >= target.size())
    target.resize(static_cast<std::size_t>(ref.index) + 1);
  return target[static_cast<std::size_t>(ref.index)];
}

void ConnectionTracker::on_healthy(const HealthyEvent& event) {
  std::unique_lock lock(mutex_);
  TrackedConnection& c = slot(event.connection);
  if (!c.healthy) ++healthy_;
  c.healthy = true;
  c.backend_pid = event.server.backend_pid;
  changed(lock);
}

void ConnectionTracker::on_down(const DownEvent& event) {
  const Clock::time_point now = Clock::now();  // first thing: this is the detection instant
  const Clock::time_point woken = callback_began_ ? callback_began_() : Clock::time_point{};
  std::unique_lock lock(mutex_);
  TrackedConnection& c = slot(event.connection);
  if (c.healthy) --healthy_;
  c.healthy = false;
  ++c.downs;
  ++downs_;
  c.last_down = now;
  c.last_down_woken = woken;
  c.last_cause = event.cause;
  c.failures_since_down = 0;
  changed(lock);
}

void ConnectionTracker::on_probe(const ProbeEvent& event) {
  std::unique_lock lock(mutex_);
  ++probes_;
  if (event.heartbeat) ++heartbeats_;
  changed(lock);
}

void ConnectionTracker::changed(std::unique_lock<std::mutex>& lock) {
  const bool wake = std::any_of(waiting_.begin(), waiting_.end(),
                                [](const std::function<bool()>* holds) { return (*holds)(); });
  lock.unlock();
  if (wake) changed_.notify_all();
}

bool ConnectionTracker::wait(const std::function<bool()>& holds,
                             std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  waiting_.push_back(&holds);
  const bool held = changed_.wait_for(lock, timeout, holds);
  waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &holds));
  return held;
}

bool ConnectionTracker::wait_until(
    const std::string& target,
    const std::function<bool(const std::vector<TrackedConnection>&)>& done,
    std::chrono::milliseconds timeout) {
  return wait([&] { return done(connections_[target]); }, timeout);
}

void ConnectionTracker::on_connect_failed(const ConnectFailedEvent& event) {
  std::unique_lock lock(mutex_);
  ++connect_failures_;
  ++slot(event.connection).failures_since_down;
  ++failures_by_cause_[std::string(to_string(event.cause))];
  last_failure_ = fmt::format("{} attempt {}: {} {}", event.connection.target, event.attempt,
                              event.sqlstate, event.message);
  changed(lock);
}

std::string ConnectionTracker::summary() {
  const std::lock_guard lock(mutex_);
  std::map<std::string, int> down_causes;
  int down = 0;
  int silent = 0;
  for (const auto& [target, connections] : connections_)
    for (const TrackedConnection& c : connections) {
      if (c.healthy) continue;
      ++down;
      if (c.downs > 0) ++down_causes[std::string(to_string(c.last_cause))];
      if (c.failures_since_down == 0) ++silent;
    }
  std::string text = fmt::format("{} healthy, {} not; last downs by cause:", healthy_, down);
  for (const auto& [cause, n] : down_causes) text += fmt::format(" {} {}", cause, n);
  text += fmt::format("; {} connect attempts failed", connect_failures_);
  for (const auto& [cause, n] : failures_by_cause_) text += fmt::format(" ({} {})", cause, n);
  if (!last_failure_.empty()) text += ", the last: " + last_failure_;
  text += fmt::format("; {} not healthy with no failed attempt since their last down", silent);
  return text;
}

bool ConnectionTracker::wait_connect_failures(std::uint64_t count,
                                              std::chrono::milliseconds timeout) {
  return wait([&] { return connect_failures_ >= count; }, timeout);
}

bool ConnectionTracker::wait_downs_above(std::uint64_t count, std::chrono::milliseconds timeout) {
  return wait([&] { return downs_ > count; }, timeout);
}

bool ConnectionTracker::wait_healthy(int count, std::chrono::milliseconds timeout) {
  return wait([&] { return healthy_ >= count; }, timeout);
}

TrackedConnection ConnectionTracker::connection(const std::string& target, int index) {
  const std::lock_guard lock(mutex_);
  return slot(ConnectionRef{target, index});
}

std::vector<TrackedConnection> ConnectionTracker::connections(const std::string& target) {
  const std::lock_guard lock(mutex_);
  return connections_[target];
}

int ConnectionTracker::healthy_count() {
  const std::lock_guard lock(mutex_);
  return healthy_;
}

std::uint64_t ConnectionTracker::probes() {
  const std::lock_guard lock(mutex_);
  return probes_;
}

std::uint64_t ConnectionTracker::heartbeats() {
  const std::lock_guard lock(mutex_);
  return heartbeats_;
}

std::uint64_t ConnectionTracker::downs() {
  const std::lock_guard lock(mutex_);
  return downs_;
}

}  // namespace pgwd::bench
