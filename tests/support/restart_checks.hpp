#pragma once

/// How a target's connections came back after its server restarted, checked on what pgwatchdog
/// decides (when it tries again) and, for the way back as a whole, with the time the processes
/// on the path waited for a CPU taken out, measured. A restart under a loaded machine (a TSan
/// build at load 18 took more than a second from "server ready" to the last connection healthy)
/// otherwise fails on the scheduler's doing.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>

#include "support/loop_gaps.hpp"
#include "support/recording_observer.hpp"

namespace pgwd::testing {

/// `n` connections of `target` were healthy, went down, and are healthy again (observer.healthy
/// holds their first n healthy events, then the returns); the server was ready again at `ready`
/// (pg_ctl -w returned). `loop_waited`: how long the loop's thread waited for a CPU from before
/// the restart until now (CpuWaitSince). `postmaster_pid`: the server's, after the restart.
/// `max_delay`: the longest retry delay pgwatchdog may announce (the target's backoff_max).
/// `label` starts the MESSAGE line.
inline void check_back_after_ready(const std::string& label, const RecordingObserver& observer,
                                   const std::string& target, std::size_t n,
                                   RecordingObserver::Clock::time_point ready,
                                   std::chrono::nanoseconds max_delay,
                                   RecordingObserver::Clock::duration loop_waited,
                                   int postmaster_pid) {
  using Clock = RecordingObserver::Clock;
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  // 1. pgwatchdog's decision: the attempt that brought each connection back started no later
  // than one retry delay after the server was ready (each failure while it was away announced
  // at most max_delay; a connection back hurries the others, and the scout comes sooner), plus
  // 50 ms for a timer's lateness and the loop's wait for a CPU.
  Clock::duration latest_attempt = Clock::duration::min();  // negative: before `ready`
  Clock::time_point last_healthy{};
  // The server's side of the way back: the new postmaster's wait for a CPU since it started
  // (it forks each backend; this also counts its start-up, before `ready`) and each new
  // backend's since its fork (it is idle since, and idle time is no wait).
  Clock::duration server_waited{};
  if (const auto pm = thread_schedstat(postmaster_pid, postmaster_pid))
    server_waited += std::chrono::duration_cast<Clock::duration>(pm->waiting);
  for (std::size_t i = n; i < observer.healthy.size(); ++i) {
    const auto& back = observer.healthy[i];
    if (back.event.connection.target != target) continue;
    last_healthy = std::max(last_healthy, back.at);
    Clock::time_point attempt_at{};
    for (const auto& a : observer.attempts)
      if (a.event.connection.target == target &&
          a.event.connection.index == back.event.connection.index && a.at <= back.at)
        attempt_at = a.at;
    INFO("connection ", back.event.connection.index);
    REQUIRE(attempt_at != Clock::time_point{});
    latest_attempt = std::max(latest_attempt, attempt_at - ready);
    CHECK(attempt_at - ready <= max_delay + std::chrono::milliseconds(50) + loop_waited);
    server_waited += lifetime_cpu_wait(back.event.server.backend_pid);
  }
  // 2. The way back as a whole: "back within a second" of the server being ready, less what the
  // loop's thread and the server's processes waited for a CPU (both over-counted: the loop's
  // wait runs from before the restart, the postmaster's from its start).
  const auto back_in = last_healthy - ready;
  MESSAGE(label, ": last connection healthy ", ms(back_in),
          " ms after pg_ctl reported the server ready; the returning attempts started at most ",
          ms(latest_attempt), " ms after ready (negative: before); the loop's thread waited ",
          ms(loop_waited), " ms and the postmaster and new backends ", ms(server_waited),
          " ms for a CPU: back in ", ms(back_in - loop_waited - server_waited),
          " ms less those waits");
  CHECK(back_in - loop_waited - server_waited < std::chrono::seconds(1));
}

}  // namespace pgwd::testing
