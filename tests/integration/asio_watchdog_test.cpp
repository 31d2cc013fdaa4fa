// The Watchdog on a host's asio io_context (pgwd::AsioLoop), against a real cluster: the
// scenarios the libevent path is tested with (terminate, restart, NOTIFY, wrong password), and
// that a destroyed Watchdog leaves nothing on the host's io_context.
#include <doctest/doctest.h>

#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "integration/asio_watchdog_harness.hpp"
#include "support/backoff_checks.hpp"
#include "support/loop_gaps.hpp"
#include "support/process_exits.hpp"
#include "support/restart_checks.hpp"
#include "support/sigquit_down.hpp"
#include "support/stall_wait.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::AsioWatchdogFixture;
using pgwd::testing::ShutdownMode;

namespace {

long long micros(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// Restarts the server on a helper thread while the io_context runs on this one.
void restart_and_recover(AsioWatchdogFixture& f, ShutdownMode mode) {
  constexpr std::size_t n = 3;
  f.watchdog->add_target(f.target("restart", n));
  REQUIRE(f.run_until([&] { return f.all_healthy("restart", n); }, 10s));

  std::atomic<bool> restarted{false};
  std::atomic<std::chrono::steady_clock::time_point::rep> ready_at{0};
  // The io_context runs on this thread: its wait for a CPU from here on is the machine's share
  // of the way back (support/restart_checks.hpp).
  const pgwd::testing::CpuWaitSince loop_wait;
  std::thread restarter([&] {
    f.cluster.restart(mode);  // pg_ctl restart -w: returns once the server accepts connections
    ready_at = std::chrono::steady_clock::now().time_since_epoch().count();
    restarted = true;
  });
  const bool came_back = f.run_until(
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
  // A fast stop ends each session with FATAL 57P01, an immediate one with WARNING 57P01 (best
  // effort: support/sigquit_down.hpp).
  for (const auto& d : f.observer.down) {
    if (mode == ShutdownMode::fast)
      CHECK(d.event.cause == Cause::server_shutdown);
    else
      pgwd::testing::check_sigquit_down(d.event, Cause::immediate_shutdown, "57P01");
  }
  pgwd::testing::check_back_after_ready("asio", f.observer, "restart", n, ready,
                                        f.target("restart", n).backoff_max, loop_waited,
                                        f.cluster.postmaster_pid());
  CHECK(f.metric("pgwatchdog_up", {{"target", "restart"}}) == 1);
  CHECK(f.metric("pgwatchdog_reconnects_total", {{"target", "restart"}, {"result", "success"}}) ==
        n);
}

}  // namespace

TEST_CASE_FIXTURE(AsioWatchdogFixture,
                  "asio: each terminated backend is down with server_shutdown at once and then "
                  "healthy again") {
  constexpr std::size_t n = 4;
  watchdog->add_target(target("term", n));
  REQUIRE(run_until([&] { return all_healthy("term", n); }, 10s));
  const auto before = cluster.backend_pids("term");
  REQUIRE(before.size() == n);

  // As terminate_backend_test.cpp: the latency asserted is pgwatchdog's, from each backend's
  // exit (its FATAL is on the socket by then) to the down event, less the time the io_context's
  // thread (this one, which also makes the admin call) waited for a CPU meanwhile.
  pgwd::testing::ProcessExits exits(before);
  const pgwd::testing::CpuWaitSince loop_wait;
  const auto terminated_at = std::chrono::steady_clock::now();
  REQUIRE(cluster.terminate_backends("term") == static_cast<int>(n));
  REQUIRE(run_until([&] { return observer.down.size() >= n; }, 5s));
  const auto waited = loop_wait.waited();
  REQUIRE(exits.wait(5s));
  std::chrono::steady_clock::duration slowest_after_exit{};
  for (const auto& d : observer.down) {
    CHECK(d.event.cause == Cause::server_shutdown);
    CHECK(d.event.sqlstate == "57P01");
    const auto exited =
        exits.exited_at(pgwd::testing::backend_pid_before(observer, d.event.connection, d.at));
    REQUIRE(exited.has_value());
    slowest_after_exit = std::max(slowest_after_exit, d.at - *exited);
    CHECK(d.at - *exited - waited < pgwd::testing::kDownAfterBackendExit);
  }
  const auto slowest = std::max_element(observer.down.begin(), observer.down.end(),
                                        [](const auto& a, const auto& b) { return a.at < b.at; });
  MESSAGE("asio: terminate-to-down latency, slowest of ", n, ": ",
          micros(slowest->at - terminated_at),
          " us from calling pg_terminate_backend; from a backend's exit to its down event at most ",
          micros(slowest_after_exit), " us, the io_context's thread waited ", micros(waited),
          " us for a CPU meanwhile: ", micros(slowest_after_exit - waited),
          " us less that wait (pidfds: ", std::string(exits.pidfds() ? "yes" : "no, /proc polled"),
          ")");

  REQUIRE(
      run_until([&] { return all_healthy("term", n) && observer.healthy.size() == 2 * n; }, 5s));
  for (int pid : cluster.backend_pids("term"))
    CHECK(std::find(before.begin(), before.end(), pid) == before.end());
  CHECK(metric("pgwatchdog_disconnects_total",
               {{"target", "term"}, {"cause", "server_shutdown"}}) == n);
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "term"}, {"result", "success"}}) == n);
  CHECK(metric("pgwatchdog_up", {{"target", "term"}}) == 1);
}

TEST_SUITE_BEGIN("thread");  // a helper thread restarts the server: CI runs these under TSan

TEST_CASE_FIXTURE(AsioWatchdogFixture,
                  "asio: pg_ctl restart -m fast - down with server_shutdown and back within a "
                  "second") {
  restart_and_recover(*this, ShutdownMode::fast);
  // Whether a reconnect attempt fails depends on the backoff's jitter against the restart's
  // length (a quick restart can be back before the first attempt), so none is asserted.
}

TEST_CASE_FIXTURE(AsioWatchdogFixture,
                  "asio: pg_ctl restart -m immediate - down at once and back within a second") {
  restart_and_recover(*this, ShutdownMode::immediate);
}

TEST_SUITE_END();

TEST_CASE_FIXTURE(AsioWatchdogFixture,
                  "asio: a NOTIFY is delivered with no probe - a burst of large ones is delivered "
                  "whole") {
  TargetOptions o = target("listener", 1);
  o.listen_channels = {"jobs"};
  o.heartbeat = 0ms;  // every round trip counted below is one the NOTIFY caused
  // The burst's probe waits for the rest of the burst: not bounded by a loaded machine's reading
  // speed (notify_test.cpp). Stranded bytes are caught by the stall check.
  o.probe_timeout = 60s;
  watchdog->add_target(o);
  REQUIRE(run_until([&] { return all_healthy("listener", 1); }, 10s));
  const int setup_statements = cluster.count_statements("listener");

  cluster.execute("NOTIFY jobs, 'job 42 is ready'");
  REQUIRE(run_until([&] { return observer.notifications.size() == 1; }, 5s));
  run_for(200ms);  // a probe or a disconnect that would follow has time to show
  CHECK(observer.notifications[0].event.channel == "jobs");
  CHECK(observer.notifications[0].event.payload == "job 42 is ready");
  CHECK(observer.down.empty());
  CHECK(observer.probes.empty());
  CHECK(cluster.count_statements("listener") == setup_statements);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "listener"}}) == 1);

  // 300 x 7 kB: many reads of libpq's buffer; only level-triggered readiness delivers them all.
  cluster.execute(
      "SELECT pg_notify('jobs', repeat('x', 7000) || i::text) FROM generate_series(1, 300) AS i");
  REQUIRE(pgwd::testing::arrived_without_stall(
      [&](const auto& done, auto deadline) { return run_until(done, deadline); },
      [&] { return observer.notifications.size(); }, 301));
  CHECK(observer.notifications.back().event.payload == std::string(7000, 'x') + "300");
  CHECK(observer.down.empty());
  CHECK(metric("pgwatchdog_notifications_total", {{"target", "listener"}}) == 301);
}

TEST_CASE_FIXTURE(AsioWatchdogFixture,
                  "asio: a wrong password fails with 28P01 - attempts spaced by the backoff while "
                  "the host's own handlers keep running") {
  const std::string wrong_password = "not-the-password-5c1e";
  TargetOptions o = target("badpw", 1);
  o.conninfo = cluster.conninfo_with_password("badpw", wrong_password);
  o.backoff_initial = 100ms;
  o.backoff_max = 400ms;
  watchdog->add_target(o);

  // The host's own 10 ms ticker on the same io_context measures how late it runs meanwhile.
  asio::steady_timer tick(host.io);
  pgwd::testing::LoopGaps gaps;
  std::function<void()> arm_tick = [&] {
    tick.expires_after(10ms);
    tick.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      gaps.tick();
      arm_tick();
    });
  };
  arm_tick();
  // Eight failures: 100 + 200 + 6 x 400 ms of backoff at most, plus eight logins refused.
  const auto& failures = observer.connect_failures;
  REQUIRE(run_until([&] { return failures.size() >= 8; }, 30s));
  tick.cancel();

  for (const auto& f : failures) {
    CHECK(f.event.cause == Cause::auth_failed);
    CHECK(f.event.sqlstate == "28P01");
    CHECK(f.event.message.find(wrong_password) == std::string::npos);
  }
  pgwd::testing::check_backoff_schedule(observer, o.backoff_initial, o.backoff_max);
  CHECK(observer.healthy.empty());
  CHECK(metric("pgwatchdog_up", {{"target", "badpw"}}) == 0);
  CHECK(metric("pgwatchdog_connect_failures_total",
               {{"target", "badpw"}, {"cause", "auth_failed"}}) ==
        static_cast<double>(failures.size()));
  MESSAGE("asio: ", failures.size(), " failed attempts; the host's 10 ms ticker: ", gaps.summary());
  // The host loop's busy stretches: the CPU time its thread spent within one tick gap
  // (schedstat's on-CPU time, so neither the time it waited for a CPU nor the time it slept
  // counts: seen, a 135 ms gap with no CPU at all, 36 ms of it waiting for one, under a CPU hog).
  // That CPU is pgwatchdog's: the ticker's own is microseconds, the rest is the watchdog's
  // handlers, here libpq's client side of SCRAM run on the loop (a few ms per attempt).
  CHECK(gaps.worst_on_cpu() < 100ms);
  CHECK(log_text->str().find(wrong_password) == std::string::npos);
}

TEST_CASE_FIXTURE(AsioWatchdogFixture,
                  "asio: a destroyed Watchdog leaves nothing on the host's io_context and no "
                  "connection on the server") {
  TargetOptions o = target("gone", 2);
  o.heartbeat = 200ms;  // timers armed, a probe possibly in flight
  watchdog->add_target(o);
  REQUIRE(run_until([&] { return all_healthy("gone", 2); }, 10s));
  const auto pids = cluster.backend_pids("gone");
  REQUIRE(pids.size() == 2);
  pgwd::testing::ProcessExits exits(pids);
  watchdog.reset();
  // Without a work guard run() returns once no handler and no wait is left. A wait left behind
  // (a heartbeat, a probe's timeout, a socket) shows as time this thread, which runs the
  // io_context, spends blocked in it; the time it spent waiting for a CPU instead is the
  // machine's, measured and taken out.
  host.io.restart();
  const pgwd::testing::CpuWaitSince io_wait;
  const auto started = std::chrono::steady_clock::now();
  host.io.run_for(5s);
  const auto took = std::chrono::steady_clock::now() - started;
  const auto waited = io_wait.waited();
  CHECK(host.io.stopped());
  MESSAGE("run_for returned after ",
          std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), " ms, ",
          std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
          " ms of it waiting for a CPU");
  CHECK(took - waited < 1s);
  // The server sees the connections closed: its backends exit on the server's time, seen
  // through a pidfd each; the timeout only guards against a hang.
  CHECK(exits.wait(30s));
}

TEST_CASE(
    "asio: nameservers are refused by the Watchdog's constructor with a message naming them") {
  pgwd::testing::AsioTestLoop host;
  WatchdogOptions options;
  options.nameservers = {"127.0.0.1:5353"};
  try {
    Watchdog watchdog(host.loop(), options);
    FAIL("a Watchdog on AsioLoop accepted nameservers it cannot use");
  } catch (const InvalidOptions& e) {
    const std::string what = e.what();
    CHECK(what.find("nameservers") != std::string::npos);
    CHECK(what.find("getaddrinfo") != std::string::npos);
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
