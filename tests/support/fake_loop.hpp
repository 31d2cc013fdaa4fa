#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "pgwd/loop.hpp"

namespace pgwd::testing {

/// A Loop whose clock only moves when the test says so, with sockets and name lookups the test
/// scripts. No real loop, no sleeping:
///  - advance() fires every timer that falls due, in due order, each at its own due time (a
///    timer armed by another timer's callback fires within the same advance if it falls due);
///  - make_ready() reports a watched fd ready, as the OS would;
///  - run_posted() runs what was posted (advance() does too, first);
///  - answer() completes the oldest pending lookup of a host.
class FakeLoop final : public Loop {
 public:
  FakeLoop();
  ~FakeLoop() override;

  MonotonicTime now() const override { return now_; }
  TimerPtr make_timer(std::function<void()> on_expiry) override;
  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) override;
  std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) override;
  void post(std::function<void()> task) override { posted_.push_back(std::move(task)); }
  bool in_loop_thread() const override { return true; }

  void advance(Nanos by);
  /// Moves the clock without running any timer, as a loop busy in a callback would; the next
  /// advance() then runs the overdue timers late.
  void stall(Nanos by) { now_ += by; }
  /// How many timers are armed right now.
  std::size_t armed_timers() const;
  /// Runs the tasks posted so far (and those they post), in order.
  void run_posted();

  /// Reports `fd` ready to every watch on it whose interest matches; returns how many ran.
  int make_ready(int fd, Readiness readiness);
  /// How many watches are watching (any fd) right now.
  std::size_t active_watches() const;

  /// Lookups asked for and not answered or cancelled yet, by host.
  std::vector<std::string> pending_lookups() const;
  /// Answers the oldest pending lookup of `host`; false if there is none.
  bool answer(const std::string& host, Resolution resolution);

 private:
  class FakeTimer;
  class FakeWatch;
  class FakeResolver;
  class FakeLookup;
  friend class FakeTimer;
  friend class FakeWatch;
  friend class FakeResolver;
  friend class FakeLookup;

  MonotonicTime now_{std::chrono::hours(1)};  // not the epoch, so "zero" stands out
  std::uint64_t sequence_ = 0;                // keeps timers due at the same time in arming order
  // A set: tests make thousands of timers (a target has several), and removing one from a
  // vector is a scan; advance() picks the next by due time and arming order, not by position.
  std::unordered_set<FakeTimer*> timers_;
  std::vector<FakeWatch*> watches_;
  std::vector<FakeLookup*> lookups_;
  std::deque<std::function<void()>> posted_;
};

}  // namespace pgwd::testing
