#include <doctest/doctest.h>

#include "support/loop_gaps.hpp"
#include "support/process_exits.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

TEST_CASE_FIXTURE(WatchdogFixture,
                  "terminate: each terminated backend is down with server_shutdown at once and "
                  "then healthy again") {
  constexpr std::size_t n = 5;
  watchdog->add_target(target("term", n));
  REQUIRE(loop.run_until([&] { return all_healthy("term", n); }, 10s));
  const auto before = cluster.backend_pids("term");
  REQUIRE(before.size() == n);

  // The latency asserted is pgwatchdog's: from each backend's exit (its FATAL is on the socket
  // by then) to the down event, less the time the loop's thread waited for a CPU meanwhile.
  // Before the exit, the admin connection, the signal and the backend's turn on a CPU are the
  // server's and the scheduler's (support/process_exits.hpp).
  pgwd::testing::ProcessExits exits(before);
  // This thread makes the admin call, then runs the loop: its wait for a CPU from here on
  // covers the loop's wait between each exit and its down event (and a little before).
  const pgwd::testing::CpuWaitSince loop_wait;
  const auto terminated_at = std::chrono::steady_clock::now();
  REQUIRE(cluster.terminate_backends("term") == static_cast<int>(n));
  // The admin call blocks this thread (and so the loop) while it connects and signals.
  const auto terminate_returned = std::chrono::steady_clock::now();
  REQUIRE(loop.run_until([&] { return observer.down.size() >= n; }, 5s));
  const auto waited = loop_wait.waited();
  REQUIRE(exits.wait(5s));

  std::chrono::steady_clock::duration slowest_after_exit{};
  for (const auto& d : observer.down) {
    CHECK(d.event.cause == Cause::server_shutdown);
    CHECK(d.event.sqlstate == "57P01");
    CHECK(d.event.message == "terminating connection due to administrator command");
    const auto exited =
        exits.exited_at(pgwd::testing::backend_pid_before(observer, d.event.connection, d.at));
    REQUIRE(exited.has_value());
    slowest_after_exit = std::max(slowest_after_exit, d.at - *exited);
    CHECK(d.at - *exited - waited < pgwd::testing::kDownAfterBackendExit);
  }
  const auto slowest = std::max_element(observer.down.begin(), observer.down.end(),
                                        [](const auto& a, const auto& b) { return a.at < b.at; });
  MESSAGE(
      "terminate-to-down latency, slowest of ", n, ": ",
      std::chrono::duration_cast<std::chrono::microseconds>(slowest->at - terminated_at).count(),
      " us from calling pg_terminate_backend, of which the admin call took ",
      std::chrono::duration_cast<std::chrono::microseconds>(terminate_returned - terminated_at)
          .count(),
      " us; from a backend's exit to its down event at most ",
      std::chrono::duration_cast<std::chrono::microseconds>(slowest_after_exit).count(),
      " us, the loop's thread waited ",
      std::chrono::duration_cast<std::chrono::microseconds>(waited).count(),
      " us for a CPU meanwhile: ",
      std::chrono::duration_cast<std::chrono::microseconds>(slowest_after_exit - waited).count(),
      " us less that wait (pidfds: ", std::string(exits.pidfds() ? "yes" : "no, /proc polled"),
      ")");

  REQUIRE(loop.run_until([&] { return all_healthy("term", n) && observer.healthy.size() == 2 * n; },
                         5s));
  const auto after = cluster.backend_pids("term");
  CHECK(after.size() == n);
  for (int pid : after) CHECK(std::find(before.begin(), before.end(), pid) == before.end());

  CHECK(metric("pgwatchdog_disconnects_total",
               {{"target", "term"}, {"cause", "server_shutdown"}}) == n);
  CHECK(metric("pgwatchdog_disconnects_total", {{"target", "term"}, {"cause", "closed"}}) == 0);
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "term"}, {"result", "success"}}) == n);
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "term"}, {"result", "failure"}}) == 0);
  CHECK(metric("pgwatchdog_outage_seconds_count", {{"target", "term"}}) == n);
  CHECK(metric("pgwatchdog_up", {{"target", "term"}}) == 1);
  CHECK(metric("pgwatchdog_connections", {{"target", "term"}, {"state", "healthy"}}) == n);
  CHECK(metric("pgwatchdog_connections", {{"target", "term"}, {"state", "backoff"}}) == 0);
  for (std::size_t i = n; i < observer.healthy.size(); ++i)
    CHECK(observer.healthy[i].event.outage.has_value());
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "terminate: one backend's end costs its siblings nothing - no probe, no "
                  "statement") {
  // A single pg_terminate_backend says nothing about the other connections; a server-wide end
  // reaches each of their sockets on its own. So none of the 19 siblings is probed.
  constexpr std::size_t n = 20;
  TargetOptions o = target("alone", n);
  o.heartbeat = 0ms;  // every round trip counted below is one the terminate caused
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("alone", n); }, 10s));
  const int victim = cluster.backend_pids("alone").front();
  cluster.execute("SELECT pg_terminate_backend(" + std::to_string(victim) + ")");
  REQUIRE(loop.run_until(
      [&] { return observer.down.size() == 1 && observer.healthy.size() == n + 1; }, 5s));
  loop.run_for(300ms);  // a probe sent to a sibling would be answered by now
  CHECK(observer.down.size() == 1);
  CHECK(metric("pgwatchdog_probes_total", {{"target", "alone"}, {"result", "ok"}}) == 0);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "alone"}}) == 1);  // the victim's own
  CHECK(cluster.count_statements("alone") == 0);
  CHECK(all_healthy("alone", n));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
