#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "support/loop_gaps.hpp"
#include "support/restart_checks.hpp"
#include "support/sigquit_down.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::testing::CpuWaitSince;

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::ShutdownMode;
using pgwd::testing::WatchdogFixture;

namespace {

// Restarts the server on a helper thread while the loop keeps running on this one, and checks
// that every connection notices, backs off while the server is away, and is back within a second
// of the server accepting connections again.
void restart_and_recover(WatchdogFixture& f, ShutdownMode mode) {
  constexpr std::size_t n = 4;
  f.watchdog->add_target(f.target("restart", n));
  REQUIRE(f.loop.run_until([&] { return f.all_healthy("restart", n); }, 10s));

  std::atomic<bool> restarted{false};
  std::atomic<std::chrono::steady_clock::time_point::rep> ready_at{0};
  // The loop runs on this thread: its wait for a CPU from here on is the machine's share of the
  // way back (support/restart_checks.hpp).
  const CpuWaitSince loop_wait;
  std::thread restarter([&] {
    f.cluster.restart(mode);  // pg_ctl restart -w: returns once the server accepts connections
    ready_at = std::chrono::steady_clock::now().time_since_epoch().count();
    restarted = true;
  });
  const bool came_back = f.loop.run_until(
      [&] {
        return restarted && f.all_healthy("restart", n) && f.observer.healthy.size() >= 2 * n;
      },
      60s);
  const auto loop_waited = loop_wait.waited();
  restarter.join();
  REQUIRE(came_back);

  const std::chrono::steady_clock::time_point ready{
      std::chrono::steady_clock::duration(ready_at.load())};
  CHECK(f.observer.down.size() == n);
  pgwd::testing::check_back_after_ready("restart", f.observer, "restart", n, ready,
                                        f.target("restart", n).backoff_max, loop_waited,
                                        f.cluster.postmaster_pid());
  CHECK(f.metric("pgwatchdog_up", {{"target", "restart"}}) == 1);
  CHECK(f.metric("pgwatchdog_reconnects_total", {{"target", "restart"}, {"result", "success"}}) ==
        n);
}

}  // namespace

// A helper thread restarts the server while the loop runs: CI also runs these under
// ThreadSanitizer.
TEST_SUITE_BEGIN("thread");

TEST_CASE_FIXTURE(
    WatchdogFixture,
    "restart: pg_ctl restart -m fast - down with server_shutdown and back within a second") {
  restart_and_recover(*this, ShutdownMode::fast);
  for (const auto& d : observer.down) CHECK(d.event.cause == Cause::server_shutdown);
  // Attempts made while the server was away failed and were counted. Whether any was made
  // depends on the backoff's jitter against the restart's length, so none is asserted.
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "restart"}, {"result", "failure"}}) ==
        static_cast<double>(observer.connect_failures.size()));
}

TEST_CASE_FIXTURE(
    WatchdogFixture,
    "restart: pg_ctl restart -m immediate - down with immediate_shutdown at once and back "
    "within a second") {
  restart_and_recover(*this, ShutdownMode::immediate);
  // An immediate shutdown sends WARNING 57P01 to each client before the backends die (best
  // effort: support/sigquit_down.hpp): a notice, and the end of the session, told apart from a
  // planned fast stop.
  for (const auto& d : observer.down)
    pgwd::testing::check_sigquit_down(d.event, Cause::immediate_shutdown, "57P01");
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "recovery: a server away for 5 s - one scout finds it back, every sibling "
                  "follows within the spread, none sleeps out its backoff") {
  constexpr std::size_t n = 6;
  TargetOptions o = target("scouted", n);
  // Long backoff delays (1-2 s, 2-4 s, 4-8 s, ...): without the scout the connections would come
  // back seconds apart, each at the end of its own delay.
  o.backoff_initial = 2s;
  o.backoff_max = 60s;
  o.scout_interval = 300ms;
  const auto spread = std::min<Duration>(o.backoff_initial, o.scout_interval);  // 300 ms
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("scouted", n); }, 10s));

  std::atomic<bool> started{false};
  std::atomic<std::chrono::steady_clock::time_point::rep> ready_at{0};
  std::thread outage([&] {
    cluster.stop(ShutdownMode::fast);
    std::this_thread::sleep_for(5s);  // the outage itself, not a wait for the watchdog
    cluster.start();  // pg_ctl start -w: returns once the server accepts connections
    ready_at = std::chrono::steady_clock::now().time_since_epoch().count();
    started = true;
  });
  // The loop runs on this thread: how long it waited for a CPU meanwhile is the machine's share
  // of the wall-clock bounds below (it accrues only while the loop is runnable, not while it
  // sleeps through the outage).
  const CpuWaitSince loop_wait;
  const bool came_back = loop.run_until(
      [&] { return started && all_healthy("scouted", n) && observer.healthy.size() >= 2 * n; },
      60s);
  outage.join();
  REQUIRE(came_back);
  const std::chrono::steady_clock::time_point ready{
      std::chrono::steady_clock::duration(ready_at.load())};

  // While the server was away, the target kept trying: connect failures, all of a kind that may
  // fix itself, and its backoff grew past the spread.
  REQUIRE(!observer.connect_failures.empty());
  Duration longest_delay{};
  for (const auto& f : observer.connect_failures)
    longest_delay = std::max(longest_delay, std::chrono::duration_cast<Duration>(f.event.retry_in));
  CHECK(longest_delay > 1s);

  // The way back, from the attempts pgwatchdog chose to make: the first one to succeed started
  // within one scout period of the server being ready (pg_ctl saw it accepting by then), and
  // every other connection's successful attempt within the spread of the first one back.
  const auto& first_back = observer.healthy[n];
  std::chrono::steady_clock::time_point last_healthy{};
  for (std::size_t i = n; i < observer.healthy.size(); ++i)
    last_healthy = std::max(last_healthy, observer.healthy[i].at);
  // The attempt that brought the first connection back: its last attempt before that healthy
  // event. It may start before `ready`: pg_ctl polls the server's state ten times a second and
  // may itself wait for a CPU, so the scout can find the server before pg_ctl returns; that
  // satisfies the bound too (the difference is negative).
  const auto brought_back = [&](std::size_t index, std::chrono::steady_clock::time_point healthy) {
    std::chrono::steady_clock::time_point at{};
    for (const auto& a : observer.attempts)
      if (a.event.connection.index == static_cast<int>(index) && a.at <= healthy) at = a.at;
    return at;
  };
  const auto first_success =
      brought_back(static_cast<std::size_t>(first_back.event.connection.index), first_back.at);
  REQUIRE(first_success != std::chrono::steady_clock::time_point{});
  MESSAGE("server ready -> first successful attempt ",
          std::chrono::duration_cast<std::chrono::milliseconds>(first_success - ready).count(),
          " ms, -> first healthy ",
          std::chrono::duration_cast<std::chrono::milliseconds>(first_back.at - ready).count(),
          " ms, -> all ", n, " healthy ",
          std::chrono::duration_cast<std::chrono::milliseconds>(last_healthy - ready).count(),
          " ms (scout 300 ms, spread 300 ms, longest backoff delay ",
          std::chrono::duration_cast<std::chrono::milliseconds>(longest_delay).count(), " ms)");
  const auto waited = loop_wait.waited();
  MESSAGE("the loop's thread waited ",
          std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
          " ms for a CPU during the outage and the way back");
  // 50 ms for a timer's lateness, plus the loop's wait for a CPU.
  CHECK(first_success - ready <= o.scout_interval + 50ms + waited);
  for (std::size_t index = 0; index < n; ++index) {
    std::chrono::steady_clock::time_point healthy_at{};
    for (std::size_t i = n; i < observer.healthy.size(); ++i)
      if (observer.healthy[i].event.connection.index == static_cast<int>(index))
        healthy_at = observer.healthy[i].at;
    INFO("connection ", index);
    CHECK(brought_back(index, healthy_at) - first_back.at <= spread + 50ms + waited);
  }
  CHECK(metric("pgwatchdog_up", {{"target", "scouted"}}) == 1);
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "recovery: after an immediate stop the connections leave the retrying to the "
                  "scout - none tries before its first turn - and all come back") {
  constexpr std::size_t n = 6;
  TargetOptions o = target("server_wide", n);  // backoff_initial: the default 100 ms
  o.scout_interval = 300ms;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("server_wide", n); }, 10s));

  std::atomic<bool> started{false};
  std::thread outage([&] {
    cluster.stop(ShutdownMode::immediate);
    std::this_thread::sleep_for(1s);  // the outage itself, not a wait for the watchdog
    cluster.start();                  // pg_ctl start -w: returns once the server accepts
    started = true;
  });
  const bool came_back = loop.run_until(
      [&] { return started && all_healthy("server_wide", n) && observer.healthy.size() >= 2 * n; },
      60s);
  outage.join();
  REQUIRE(came_back);
  REQUIRE(observer.down.size() == n);

  // Each connection the server's WARNING reached (the server sends it on a best-effort basis,
  // support/sigquit_down.hpp) made no attempt of its own before the scout's first turn, one
  // scout_interval after the first loss: a timer that only a late loop can delay, never hurry.
  // Before, each tried within 50-100 ms (its first backoff delay), while the postmaster still
  // waited for its backends: every such attempt a backend forked to be told 57P03.
  std::chrono::steady_clock::time_point first_down = observer.down.front().at;
  for (const auto& d : observer.down) first_down = std::min(first_down, d.at);
  std::size_t told = 0;
  for (const auto& d : observer.down) {
    if (!pgwd::testing::check_sigquit_down(d.event, Cause::immediate_shutdown, "57P01")) continue;
    ++told;
    for (const auto& a : observer.attempts)
      if (a.event.connection.index == d.event.connection.index) {
        INFO("connection ", a.event.connection.index, " attempt ", a.event.attempt);
        // Less 20 ms: the scout's timer counts from the loop's clock when the first loss was
        // handled, a little before the observer's own stamp.
        CHECK(a.at - first_down >= o.scout_interval - 20ms);
      }
  }
  CHECK(told > 0);
  MESSAGE(observer.attempts.size(), " reconnect attempts for ", n,
          " connections over the stop, a 1 s outage and the start");
  CHECK(metric("pgwatchdog_up", {{"target", "server_wide"}}) == 1);
}

TEST_SUITE_END();

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
