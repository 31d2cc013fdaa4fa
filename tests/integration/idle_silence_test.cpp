// DESIGN §2: zero traffic while healthy and idle.
#include <doctest/doctest.h>

#include "support/watchdog_fixture.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

TEST_CASE_FIXTURE(WatchdogFixture,
                  "idle: 20 idle connections for 10 s send the server zero statements") {
  watchdog->add_target(target("idle", 20));
  REQUIRE(loop.run_until([&] { return all_healthy("idle", 20); }, 10s));
  REQUIRE(cluster.backend_pids("idle").size() == 20);

  loop.run_for(10s);

  CHECK(cluster.count_statements("idle") == 0);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "idle"}}) == 0);
  CHECK(metric("pgwatchdog_probes_total", {{"target", "idle"}, {"result", "ok"}}) == 0);
  CHECK(all_healthy("idle", 20));
  CHECK(observer.down.empty());

  // The count above can fail: one OS-reported event on one connection (a NOTICE sent to it is
  // explained; a plain probe-worthy wake-up is not) shows up in both the counter and the log.
  cluster.execute("SELECT pg_notify('nobody_listens', 'x')");  // reaches no one: still silent
  loop.run_for(200ms);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "idle"}}) == 0);
}

TEST_CASE_FIXTURE(WatchdogFixture, "idle: the statement count sees the probes a heartbeat sends") {
  // Positive control for the test above: the same server-side count does see our traffic.
  TargetOptions o = target("beating", 2);
  o.heartbeat = 300ms;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("beating", 2); }, 10s));
  REQUIRE(loop.run_until(
      [&] {
        return metric("pgwatchdog_probes_total", {{"target", "beating"}, {"result", "ok"}}) >= 4;
      },
      5s));
  // The server logs a statement before it answers it, so every answered probe is in the log.
  CHECK(cluster.count_statements("beating") >= 4);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "beating"}}) == 0);
}
