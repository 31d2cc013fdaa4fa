// Embedding contract: the watchdog on the host's loop, added and removed at will, DNS via evdns.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include "pgwd/version.hpp"
#include "support/poll_deadline.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

TEST_CASE_FIXTURE(WatchdogFixture,
                  "embedding: a host name is resolved with evdns and connects like an address") {
  TargetOptions o = target("byname", 2);
  const std::string ip = "host=127.0.0.1";
  o.conninfo.replace(o.conninfo.find(ip), ip.size(), "host=localhost");
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("byname", 2); }, 10s));
  CHECK(cluster.backend_pids("byname").size() == 2);
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "embedding: a name that does not resolve is a dns failure and is retried") {
  TargetOptions o = target("noname", 1);
  const std::string ip = "host=127.0.0.1";
  o.conninfo.replace(o.conninfo.find(ip), ip.size(), "host=no-such-host.invalid");
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return observer.connect_failures.size() >= 2; }, 30s));
  CHECK(observer.connect_failures[0].event.cause == Cause::dns);
  CHECK(observer.connect_failures[0].event.message.find("no-such-host.invalid") !=
        std::string::npos);
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "embedding: remove_target closes the connections and the metric series") {
  watchdog->add_target(target("gone", 3));
  watchdog->add_target(target("stays", 1));
  REQUIRE(loop.run_until([&] { return all_healthy("gone", 3) && all_healthy("stays", 1); }, 10s));
  CHECK(metric("pgwatchdog_up", {{"target", "gone"}}) == 1);
  CHECK(watchdog->remove_target("gone"));
  CHECK_FALSE(watchdog->remove_target("gone"));
  CHECK(metric("pgwatchdog_up", {{"target", "gone"}}) == -1);  // series removed
  // Each look is an admin connection: paced; the deadline only guards against a hang.
  REQUIRE(loop.run_until(
      pgwd::testing::at_most_every(50ms, [&] { return cluster.backend_pids("gone").empty(); }),
      30s));
  CHECK(observer.down.empty());  // a removal is not a disconnect
  CHECK(all_healthy("stays", 1));
  CHECK(watchdog->target_names() == std::vector<std::string>{"stays"});
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "embedding: removing a target from inside its own event is safe") {
  struct RemoveOnDown : pgwd::testing::RecordingObserver {
    Watchdog* watchdog = nullptr;
    void on_down(const DownEvent& e) override {
      pgwd::testing::RecordingObserver::on_down(e);
      watchdog->remove_target(e.connection.target);
    }
  } remover;
  Watchdog own(loop.base(), WatchdogOptions{.observer = &remover, .logger = logger});
  remover.watchdog = &own;
  TargetOptions o = target("selfremove", 3);
  own.add_target(o);
  REQUIRE(loop.run_until(
      [&] {
        return own.connection_states("selfremove").size() == 3 && remover.healthy.size() == 3;
      },
      10s));
  cluster.terminate_backends("selfremove");
  REQUIRE(loop.run_until([&] { return own.target_names().empty(); }, 5s));
  CHECK(remover.down.size() == 1);  // silenced right after the first
  // Removing the target closed the other two connections; their backends exit on the server's
  // own time (seen lagging on a loaded machine), so wait for that with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!cluster.backend_pids("selfremove").empty() && std::chrono::steady_clock::now() < deadline)
    loop.run_for(20ms);
  CHECK(cluster.backend_pids("selfremove").empty());
}

TEST_CASE_FIXTURE(WatchdogFixture, "embedding: bad options are refused before anything connects") {
  TargetOptions o = target("dup", 1);
  watchdog->add_target(o);
  CHECK_THROWS_WITH_AS(watchdog->add_target(o),
                       "target 'dup': a target with this name already exists", InvalidTarget);
  TargetOptions bad = target("bad", 1);
  bad.conninfo = "host=127.0.0.1 port=";
  bad.conninfo += "5432 password=topsecret oops";
  try {
    watchdog->add_target(bad);
    FAIL("expected InvalidTarget");
  } catch (const InvalidTarget& e) {
    CHECK(std::string(e.what()).find("target 'bad': malformed conninfo") == 0);
    CHECK(std::string(e.what()).find("topsecret") == std::string::npos);
  }
  CHECK(watchdog->target_names() == std::vector<std::string>{"dup"});
  CHECK(metric("pgwatchdog_up", {{"target", "bad"}}) == -1);
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "embedding: every series of a target exists from the start with zeros") {
  watchdog->add_target(target("fresh", 1));
  for (const char* cause : {"server_shutdown", "immediate_shutdown", "server_crash",
                            "pooler_server_lost", "pooler_login_failing", "pooler_queue_timeout",
                            "closed", "timed_out", "probe_failed", "probe_timeout"})
    CHECK(metric("pgwatchdog_disconnects_total", {{"target", "fresh"}, {"cause", cause}}) == 0);
  for (const char* result : {"success", "failure"})
    CHECK(metric("pgwatchdog_reconnects_total", {{"target", "fresh"}, {"result", result}}) == 0);
  for (const char* state : {"resolving", "connecting", "healthy", "probing", "backoff"})
    CHECK(metric("pgwatchdog_connections", {{"target", "fresh"}, {"state", state}}) >= 0);
  CHECK(metric("pgwatchdog_build_info",
               {{"version", PGWD_PROJECT_VERSION},
                {"libpq", "15." + std::to_string(PQlibVersion() % 10000)}}) == 1);
  // The loop measures its own lag from the first ticks on (every 10 ms in this fixture).
  CHECK(loop.run_until(
      [&] {
        return metric("pgwatchdog_event_loop_lag_seconds_count", {{"loop", watchdog->name()}}) >= 3;
      },
      5s));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
