#include <doctest/doctest.h>

#include "support/stall_wait.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

TEST_CASE_FIXTURE(
    WatchdogFixture,
    "notify: a NOTIFY on a LISTENing connection is delivered and counted - not a disconnect") {
  TargetOptions o = target("listener", 1);
  o.listen_channels = {"jobs"};
  o.heartbeat = 0ms;  // every round trip counted below is one the NOTIFY caused
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("listener", 1); }, 10s));
  const int setup_statements = cluster.count_statements("listener");
  CHECK(setup_statements == 1);  // the LISTEN, nothing else

  cluster.execute("NOTIFY jobs, 'job 42 is ready'");
  REQUIRE(loop.run_until([&] { return observer.notifications.size() == 1; }, 5s));
  loop.run_for(200ms);  // anything that would follow (a probe, a disconnect) has time to show

  const NotificationEvent& n = observer.notifications[0].event;
  CHECK(n.channel == "jobs");
  CHECK(n.payload == "job 42 is ready");
  CHECK(n.connection.target == "listener");
  CHECK(n.sender_pid > 0);
  CHECK(observer.down.empty());
  CHECK(observer.probes.empty());  // the NOTIFY explained the wake-up: no probe was needed
  CHECK(cluster.count_statements("listener") == setup_statements);
  CHECK(metric("pgwatchdog_notifications_total", {{"target", "listener"}}) == 1);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "listener"}}) == 1);
  CHECK(metric("pgwatchdog_disconnects_total", {{"target", "listener"}, {"cause", "closed"}}) == 0);
  CHECK(all_healthy("listener", 1));
}

TEST_CASE_FIXTURE(
    WatchdogFixture,
    "notify: a burst of large notifications is delivered whole (level-triggered reads)") {
  TargetOptions o = target("burst", 1);
  o.listen_channels = {"bulk"};
  // A wake-up that reads part of a message is answered by a probe, which the backend answers only
  // after the rest of the ~2 MB: its deadline would bound how fast a loaded machine reads the
  // burst, which is not what this test is about (tls_test.cpp's control timed out with the
  // default 5 s beside stress-ng). Stranded bytes are caught by the stall check below.
  o.probe_timeout = 60s;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("burst", 1); }, 10s));
  // 300 x 7 kB: far more than one read of libpq's buffer; an edge-triggered watch would strand
  // some.
  cluster.execute(
      "SELECT pg_notify('bulk', repeat('x', 7000) || i::text) FROM generate_series(1, 300) AS i");
  REQUIRE(pgwd::testing::arrived_without_stall(
      [&](const auto& done, auto deadline) { return loop.run_until(done, deadline); },
      [&] { return observer.notifications.size(); }, 300));
  CHECK(observer.notifications.back().event.payload == std::string(7000, 'x') + "300");
  CHECK(observer.down.empty());
  CHECK(metric("pgwatchdog_notifications_total", {{"target", "burst"}}) == 300);
}

TEST_CASE_FIXTURE(
    WatchdogFixture,
    "notice: a NOTICE from the server is delivered and counted and is not a disconnect") {
  // A heartbeat statement that raises a NOTICE: the server sends it on our watched connection.
  TargetOptions o = target("noticed", 1);
  o.heartbeat = 200ms;
  o.heartbeat_query = "DO $$ BEGIN RAISE NOTICE 'disk is 91%% full'; END $$";
  watchdog->add_target(o);
  REQUIRE(
      loop.run_until([&] { return !observer.notices.empty() && !observer.probes.empty(); }, 10s));
  const NoticeEvent& n = observer.notices[0].event;
  CHECK(n.severity == "NOTICE");
  CHECK(n.sqlstate == "00000");
  CHECK(n.message == "disk is 91% full");
  CHECK(observer.down.empty());
  CHECK(metric("pgwatchdog_notices_total", {{"target", "noticed"}}) >= 1);
  CHECK(observer.probes[0].event.result == ProbeResult::ok);  // the notice came with a good answer
  CHECK(log_text->str().find("server NOTICE 00000: disk is 91% full") != std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
