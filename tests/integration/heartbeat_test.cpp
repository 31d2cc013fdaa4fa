#include <doctest/doctest.h>

#include "support/watchdog_fixture.hpp"

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
  REQUIRE(loop.run_until([&] { return !observer.down.empty(); }, 5s));
  const auto detected_in = observer.down[0].at - paused_at;
  MESSAGE("SIGSTOP to down: ",
          std::chrono::duration_cast<std::chrono::milliseconds>(detected_in).count(), " ms");
  CHECK(observer.down[0].event.cause == Cause::probe_timeout);
  CHECK(detected_in <= 2s + 250ms);  // heartbeat + probe timeout + margin
  CHECK(metric("pgwatchdog_probes_total", {{"target", "hung"}, {"result", "timeout"}}) == 1);
  CHECK(metric("pgwatchdog_disconnects_total", {{"target", "hung"}, {"cause", "probe_timeout"}}) ==
        1);

  // The replacement connection goes to a fresh backend and is healthy.
  REQUIRE(loop.run_until([&] { return observer.healthy.size() == 2; }, 5s));
  CHECK(observer.healthy[1].event.server.backend_pid != pids[0]);
  cluster.resume_backend(pids[0]);
}
