// Targets behind a real PgBouncer (Debian's 1.18) in front of a throwaway cluster: what a watched
// connection sees through a pooler, with `pooler: pgbouncer` and without it.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/background_call.hpp"
#include "support/loop_gaps.hpp"
#include "support/pgbouncer.hpp"
#include "support/process_exits.hpp"
#include "support/standby_cluster.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::BackgroundCall;
using pgwd::testing::CallOutcome;
using pgwd::testing::heartbeats_of;
using pgwd::testing::heartbeats_sent_between;
using pgwd::testing::PgBouncer;
using pgwd::testing::PgBouncerSettings;
using pgwd::testing::RecordingObserver;
using pgwd::testing::run_while_calling;
using pgwd::testing::sent_at;
using pgwd::testing::ShutdownMode;
using pgwd::testing::StandbyCluster;
using pgwd::testing::TestCluster;
using pgwd::testing::WatchdogHarness;

namespace {

constexpr const char* kBouncerRole = "pgwd_bouncer";  // PgBouncer's own login to the server

std::string bouncer_conninfo(const PgBouncer& bouncer, const std::string& user,
                             const std::string& application_name) {
  return "host=127.0.0.1 port=" + std::to_string(bouncer.port()) + " user=" + user +
         " dbname=postgres application_name=" + application_name;
}

pgwd::testing::ClusterSettings trusting_the_bouncer() {
  pgwd::testing::ClusterSettings settings;
  settings.hba_lines = {std::string("host all ") + kBouncerRole + " 127.0.0.1/32 trust"};
  return settings;
}

struct PoolerFixture : pgwd::testing::WatchdogFixture {
  std::unique_ptr<PgBouncer> bouncer;

  PoolerFixture() : WatchdogFixture(trusting_the_bouncer()) {
    cluster.execute(std::string("CREATE ROLE ") + kBouncerRole + " LOGIN");
  }

  void start_bouncer(const std::string& pool_mode, int query_wait_timeout_seconds = 120) {
    bouncer = std::make_unique<PgBouncer>(
        PgBouncerSettings{.server_port = cluster.port(),
                          .server_user = kBouncerRole,
                          .user = cluster.user(),
                          .pool_mode = pool_mode,
                          .query_wait_timeout_seconds = query_wait_timeout_seconds});
  }

  TargetOptions pooled(const std::string& name, int connections, Pooler pooler) const {
    TargetOptions o = target(name, connections);
    o.conninfo = bouncer_conninfo(*bouncer, cluster.user(), name);
    o.pooler = pooler;
    // Not what finds a lost server here: the round trip right after login is.
    o.heartbeat = 1h;
    return o;
  }

  // PgBouncer's server connections, whichever client they serve.
  std::vector<int> bouncer_backend_pids() const {
    std::istringstream listed(cluster.query_value(
        std::string("SELECT coalesce(string_agg(pid::text, ' '), '') FROM pg_stat_activity "
                    "WHERE usename = '") +
        kBouncerRole + "'"));
    std::vector<int> pids;
    for (int pid = 0; listed >> pid;) pids.push_back(pid);
    return pids;
  }
  int terminate_bouncer_backends() const {
    return std::stoi(cluster.query_value(
        std::string("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                    "usename = '") +
        kBouncerRole + "'"));
  }
};

}  // namespace

TEST_CASE_FIXTURE(PoolerFixture,
                  "pooler: session pooling - a terminated server backend takes the watched "
                  "connection down at once, with the server's cause") {
  start_bouncer("session");
  watchdog->add_target(pooled("session", 1, Pooler::pgbouncer));
  REQUIRE(loop.run_until([&] { return all_healthy("session", 1); }, 10s));
  // Healthy only after a round trip through the pool: it reached a server, which told its role.
  CHECK(bouncer->total_queries() >= 1);
  REQUIRE(observer.healthy.size() == 1);
  CHECK(observer.healthy[0].event.server.in_hot_standby == "off");

  // The latency asserted is pgwatchdog's, as in terminate_backend_test.cpp: from the server
  // backends' exit (support/process_exits.hpp) to the down event, less the time the loop's
  // thread (this one) and PgBouncer, which relays the FATAL, waited for a CPU meanwhile. Which
  // of PgBouncer's server connections serves ours is PgBouncer's secret: the last one to exit
  // is the latest its FATAL can have been sent.
  const auto bouncer_backends = bouncer_backend_pids();
  REQUIRE(!bouncer_backends.empty());
  pgwd::testing::ProcessExits exits(bouncer_backends);
  const pgwd::testing::CpuWaitSince loop_wait;
  const pgwd::testing::CpuWaitSince bouncer_wait(bouncer->pid(), bouncer->pid());
  const auto terminated = std::chrono::steady_clock::now();
  REQUIRE(terminate_bouncer_backends() >= 1);
  REQUIRE(loop.run_until([&] { return !observer.down.empty(); }, 5s));
  const auto waited = loop_wait.waited() + bouncer_wait.waited();
  REQUIRE(exits.wait(5s));
  pgwd::testing::ProcessExits::Clock::time_point last_exit{};
  for (int pid : bouncer_backends) last_exit = std::max(last_exit, *exits.exited_at(pid));
  const auto& down = observer.down[0];
  INFO(to_string(down.event.cause), " ", down.event.sqlstate, " ", down.event.message);
  // PgBouncer forwards the server's FATAL 57P01, then sends its own "server conn crashed?".
  CHECK(down.event.cause == Cause::server_shutdown);
  CHECK(down.at - last_exit - waited < pgwd::testing::kDownAfterBackendExit);
  MESSAGE("down ", std::chrono::duration<double, std::milli>(down.at - terminated).count(),
          " ms after the terminate was sent, ",
          std::chrono::duration<double, std::milli>(down.at - last_exit).count(), " ms after the ",
          bouncer_backends.size(), " server backend(s) exited; the loop's thread and PgBouncer ",
          "waited ", std::chrono::duration<double, std::milli>(waited).count(),
          " ms for a CPU meanwhile: ",
          std::chrono::duration<double, std::milli>(down.at - last_exit - waited).count(),
          " ms less that wait");
  REQUIRE(loop.run_until([&] { return all_healthy("session", 1); }, 10s));
}

TEST_CASE_FIXTURE(PoolerFixture,
                  "pooler: session pooling without `pooler` - the same terminate is never seen, "
                  "the control for the test above") {
  start_bouncer("session");
  TargetOptions unbound = pooled("unbound", 1, Pooler::none);
  unbound.heartbeat = 0ms;
  watchdog->add_target(unbound);
  REQUIRE(loop.run_until([&] { return all_healthy("unbound", 1); }, 10s));
  // Linked to no server: PgBouncer answered the login from its cache, or from the server
  // connection it opened for it and released to the pool.
  CHECK(bouncer->total_queries() == 0);
  terminate_bouncer_backends();
  CHECK_FALSE(loop.run_until([&] { return !observer.down.empty(); }, 1s));
}

TEST_CASE_FIXTURE(PoolerFixture,
                  "pooler: healthy means a query ran - PgBouncer's login without a server is not "
                  "enough") {
  // PgBouncer gives up on the waiting round trip before connect_timeout (5 s) would.
  start_bouncer("transaction", 1);
  // Warm the pool: PgBouncer caches the server's welcome message and from then on answers
  // logins by itself.
  watchdog->add_target(pooled("warm", 1, Pooler::pgbouncer));
  REQUIRE(loop.run_until([&] { return all_healthy("warm", 1); }, 10s));
  watchdog->remove_target("warm");
  cluster.stop(pgwd::testing::ShutdownMode::fast);

  watchdog->add_target(pooled("pooled", 1, Pooler::pgbouncer));
  watchdog->add_target(pooled("naive", 1, Pooler::none));
  // The control: PgBouncer lets the naive target in, healthy with no server at all.
  REQUIRE(loop.run_until([&] { return all_healthy("naive", 1); }, 10s));
  REQUIRE(loop.run_until(
      [&] {
        for (const auto& f : observer.connect_failures)
          if (f.event.connection.target == "pooled") return true;
        return false;
      },
      10s));
  CHECK(count_in("pooled", ConnectionState::healthy) == 0);
  for (const auto& f : observer.connect_failures) {
    if (f.event.connection.target != "pooled") continue;
    MESSAGE(to_string(f.event.cause), " ", f.event.sqlstate, " ", f.event.message);
    CHECK(f.event.cause == Cause::pooler_queue_timeout);
  }

  cluster.start();
  REQUIRE(loop.run_until([&] { return all_healthy("pooled", 1); }, 20s));
}

// A helper thread restarts or promotes the server while the loop runs: CI also runs these under
// ThreadSanitizer.
TEST_SUITE_BEGIN("thread");

TEST_CASE_FIXTURE(PoolerFixture,
                  "pooler: transaction pooling - a pg_ctl restart behind the pool is reported as "
                  "a restart of the server once for the target and counted") {
  start_bouncer("transaction");
  TargetOptions o = pooled("behind", 3, Pooler::pgbouncer);
  o.heartbeat = 200ms;
  o.probe_timeout = 2s;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("behind", 3); }, 10s));
  const ServerInfo before = observer.healthy[0].event.server;
  CHECK(before.server_address == "127.0.0.1:" + std::to_string(cluster.port()));
  CHECK_FALSE(before.server_started.empty());
  CHECK(metric("pgwatchdog_server_changes_total", {{"target", "behind"}, {"change", "restart"}}) ==
        0);
  // Every round trip may get another server connection: that alone is no change.
  REQUIRE(loop.run_until([&] { return heartbeats_of(observer, "behind").size() >= 6; }, 10s));
  CHECK(observer.server_changes.empty());

  {
    BackgroundCall restart([&] { cluster.restart(ShutdownMode::fast); });
    REQUIRE(loop.run_until([&] { return restart.done(); }, 60s));
    REQUIRE_MESSAGE(restart.error().empty(), restart.error());
  }
  REQUIRE(loop.run_until([&] { return !observer.server_changes.empty(); }, 30s));
  // Each connection has had its round trips to the restarted server since: still one report.
  const std::size_t seen = heartbeats_of(observer, "behind").size();
  REQUIRE(loop.run_until(
      [&] {
        return all_healthy("behind", 3) && heartbeats_of(observer, "behind").size() >= seen + 6;
      },
      30s));
  REQUIRE(observer.server_changes.size() == 1);
  const ServerChangeEvent& change = observer.server_changes[0].event;
  MESSAGE("reported by ", change.connection.target, "[", change.connection.index, "]: started ",
          change.previous.server_started, " -> ", change.now.server_started,
          "; disconnects meanwhile: ", observer.down.size());
  CHECK(change.change == ServerChange::restart);
  CHECK(change.previous.server_started == before.server_started);
  CHECK(change.now.server_address == before.server_address);
  CHECK(std::stod(change.now.server_started) > std::stod(before.server_started));
  CHECK(metric("pgwatchdog_server_changes_total", {{"target", "behind"}, {"change", "restart"}}) ==
        1);
  CHECK(metric("pgwatchdog_server_changes_total",
               {{"target", "behind"}, {"change", "other_server"}}) == 0);
  CHECK(log_text->str().find("the server behind the pooler restarted") != std::string::npos);
}

TEST_SUITE_END();

TEST_CASE_FIXTURE(PoolerFixture,
                  "pooler: in_front_of - a disconnect on the direct target makes the pooled "
                  "target in front of it send one round trip at once, with its heartbeat off") {
  start_bouncer("transaction");
  TargetOptions direct = target("direct", 1);
  direct.heartbeat = 0ms;
  TargetOptions front = pooled("front", 2, Pooler::pgbouncer);
  front.heartbeat = 0ms;
  front.in_front_of = "direct";
  TargetOptions alone = pooled("alone", 1, Pooler::pgbouncer);  // the control: names no target
  alone.heartbeat = 0ms;
  watchdog->add_target(direct);
  watchdog->add_target(front);
  watchdog->add_target(alone);
  REQUIRE(loop.run_until(
      [&] {
        return all_healthy("direct", 1) && all_healthy("front", 2) && all_healthy("alone", 1);
      },
      10s));
  CHECK(observer.probes.empty());

  REQUIRE(cluster.terminate_backends("direct") == 1);
  REQUIRE(loop.run_until([&] { return !heartbeats_of(observer, "front").empty(); }, 5s));
  REQUIRE(!observer.down.empty());
  CHECK(observer.down[0].event.connection.target == "direct");
  const auto front_probes = heartbeats_of(observer, "front");
  CHECK(front_probes[0].event.result == ProbeResult::ok);
  CHECK(sent_at(front_probes[0]) >= observer.down[0].at);
  // One down, one round trip; the direct target's reconnect is no event for the front.
  REQUIRE(loop.run_until([&] { return all_healthy("direct", 1); }, 10s));
  REQUIRE(observer.healthy.size() == 5);
  CHECK(heartbeats_of(observer, "front").size() == 1);
  CHECK(observer.probes.size() == 1);  // none of "alone"
}

namespace {

// A primary that lets PgBouncer's role in, so that its standby (a base backup) does too.
struct PrimaryTrustingTheBouncer {
  TestCluster primary{trusting_the_bouncer()};
  PrimaryTrustingTheBouncer() {
    primary.execute(std::string("CREATE ROLE ") + kBouncerRole + " LOGIN");
  }
};

// A standby with PgBouncer (session pooling) in front of it, then a Watchdog.
struct StandbyBehindBouncer : PrimaryTrustingTheBouncer {
  StandbyCluster standby{primary};
  PgBouncer bouncer{PgBouncerSettings{.server_port = standby.port(),
                                      .server_user = kBouncerRole,
                                      .user = standby.user(),
                                      .pool_mode = "session"}};
};

struct PooledStandbyFixture : StandbyBehindBouncer, WatchdogHarness {};

}  // namespace

TEST_SUITE_BEGIN("thread");

TEST_CASE_FIXTURE(PooledStandbyFixture,
                  "pooler: target_session_attrs=standby through PgBouncer - down with wrong_role "
                  "at the first heartbeat after the promotion though the pool still hands out "
                  "the standby's cached welcome") {
  TargetOptions o;
  o.name = "standby_only";
  o.conninfo = bouncer_conninfo(bouncer, standby.user(), o.name) + " target_session_attrs=standby";
  o.pooler = Pooler::pgbouncer;
  o.heartbeat = 300ms;
  o.probe_timeout = 1s;
  o.backoff_initial = 50ms;
  o.backoff_max = 400ms;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("standby_only", 1); }, 10s));
  CHECK(observer.healthy[0].event.server.in_hot_standby == "on");

  {
    const CallOutcome promotion = run_while_calling(
        loop, [&] { standby.promote(); },
        [&] { return !observer.down.empty() && observer.connect_failures.size() >= 3; }, 30s);
    REQUIRE(promotion.seen);
    MESSAGE("down ",
            std::chrono::duration<double, std::milli>(observer.down[0].at - promotion.returned_at)
                .count(),
            " ms after pg_ctl promote -w returned (heartbeat 300 ms): ",
            observer.down[0].event.message);
    // Within one heartbeat: the first round trip sent after the promotion was the last.
    CHECK(heartbeats_sent_between(observer, "standby_only", promotion.returned_at,
                                  observer.down[0].at) <= 1);
  }
  REQUIRE(observer.down.size() == 1);
  CHECK(observer.down[0].event.cause == Cause::wrong_role);
  for (const auto& f : observer.connect_failures) {
    INFO(f.event.message);
    CHECK(f.event.cause == Cause::wrong_role);
  }
  CHECK(observer.healthy.size() == 1);  // never healthy again on the new primary
  REQUIRE(observer.role_changes.size() == 1);
  CHECK(observer.role_changes[0].event.in_hot_standby == "off");
}

TEST_SUITE_END();

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
