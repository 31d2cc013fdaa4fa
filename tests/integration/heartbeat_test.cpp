#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "support/loop_gaps.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

TEST_CASE_FIXTURE(WatchdogFixture,
                  "heartbeat: a stopped backend (SIGSTOP) is down with probe_timeout within "
                  "heartbeat + probe timeout") {
  TargetOptions o = target("hung", 1);
  o.heartbeat = 1s;
  o.probe_timeout = 1s;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("hung", 1); }, 10s));
  const auto pids = cluster.backend_pids("hung");
  REQUIRE(pids.size() == 1);

  // Let one heartbeat pass first: it must succeed (the backend answers).
  REQUIRE(loop.run_until([&] { return !observer.probes.empty(); }, 3s));
  CHECK(observer.probes[0].event.result == ProbeResult::ok);

  cluster.pause_backend(pids[0]);
  const auto paused_at = std::chrono::steady_clock::now();
  const pgwd::testing::CpuWaitSince cpu_wait;
  REQUIRE(loop.run_until([&] { return !observer.down.empty(); }, 10s));
  // The loop's thread (this one) waiting for a CPU delays when its timers run: the machine's
  // load, not pgwatchdog's choice, so it is added to the bound (seen: 2327 ms on a loaded machine).
  const auto waited = cpu_wait.waited();
  const auto detected_in = observer.down[0].at - paused_at;
  MESSAGE("SIGSTOP to down: ",
          std::chrono::duration_cast<std::chrono::milliseconds>(detected_in).count(),
          " ms; the loop waited ",
          std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
          " ms for a CPU meanwhile");
  CHECK(observer.down[0].event.cause == Cause::probe_timeout);
  CHECK(detected_in <= 2s + 250ms + waited);  // heartbeat + probe timeout + margin
  CHECK(metric("pgwatchdog_probes_total", {{"target", "hung"}, {"result", "timeout"}}) == 1);
  CHECK(metric("pgwatchdog_disconnects_total", {{"target", "hung"}, {"cause", "probe_timeout"}}) ==
        1);

  // The replacement connection goes to a fresh backend and is healthy.
  REQUIRE(loop.run_until([&] { return observer.healthy.size() == 2; }, 30s));
  CHECK(observer.healthy[1].event.server.backend_pid != pids[0]);
  cluster.resume_backend(pids[0]);
}

namespace {

// A cluster that also counts statements in pg_stat_statements (the log counts them as well:
// log_statement = all).
struct StatementsFixture : WatchdogFixture {
  StatementsFixture()
      : WatchdogFixture(pgwd::testing::ClusterSettings{
            .extra_config = {"shared_preload_libraries = 'pg_stat_statements'",
                             "pg_stat_statements.track = all",
                             "pg_stat_statements.track_utility = on"}}) {
    cluster.execute("CREATE EXTENSION pg_stat_statements");
  }
  // Calls pg_stat_statements counted for the watchdog's role (the harness's admin is postgres).
  long calls_by_watchdog() const {
    return std::stol(
        cluster.query_value("SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s "
                            "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'watchdog'"));
  }
};

}  // namespace

TEST_CASE_FIXTURE(StatementsFixture,
                  "heartbeat: the round trip is no statement - the server logs none and "
                  "pg_stat_statements counts none, where both see the LISTENs") {
  TargetOptions o = target("beating", 3);
  o.heartbeat = 100ms;
  o.probe_timeout = 2s;
  // Positive control: LISTEN, run once per connection at connect, is a statement both counters
  // see, from the same sessions as the heartbeats.
  o.listen_channels = {"control"};
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("beating", 3); }, 10s));
  // One per target per period, in turn: every connection has its turns. Waited for, not
  // counted in the first 20: the rota passes over a connection still busy with its last round
  // trip, which a loaded machine makes longer than the 100 ms period.
  const auto turns_of = [&](int i) {
    return std::count_if(observer.probes.begin(), observer.probes.end(),
                         [&](const auto& p) { return p.event.connection.index == i; });
  };
  REQUIRE(loop.run_until(
      [&] {
        return observer.probes.size() >= 20 && turns_of(0) >= 6 && turns_of(1) >= 6 &&
               turns_of(2) >= 6;
      },
      30s));

  for (const auto& p : observer.probes) {
    CHECK(p.event.heartbeat);
    CHECK(p.event.result == ProbeResult::ok);
  }
  CHECK(metric("pgwatchdog_probes_total", {{"target", "beating"}, {"result", "ok"}}) ==
        static_cast<double>(observer.probes.size()));
  CHECK(cluster.count_statements("beating") == 3);  // the three LISTENs, nothing else
  CHECK(calls_by_watchdog() == 3);
  CHECK(observer.down.empty());
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "beating"}}) == 0);
}

TEST_CASE_FIXTURE(WatchdogFixture, "heartbeat: 0 sends no round trip at all, on any connection") {
  TargetOptions o = target("silent", 3);
  o.heartbeat = 0ms;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("silent", 3); }, 10s));
  loop.run_for(1500ms);
  CHECK(observer.probes.empty());
  CHECK(metric("pgwatchdog_probes_total", {{"target", "silent"}, {"result", "ok"}}) == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
