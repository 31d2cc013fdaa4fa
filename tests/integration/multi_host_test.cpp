// Several hosts in one DSN: walked in order, each with its own connect_timeout, honouring
// target_session_attrs; against real clusters (a primary and its standby, or two primaries).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "support/loop_gaps.hpp"
#include "support/restart_checks.hpp"
#include "support/sigquit_down.hpp"
#include "support/standby_cluster.hpp"
#include "support/subprocess.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::ClusterSettings;
using pgwd::testing::RecordingObserver;
using pgwd::testing::ShutdownMode;
using pgwd::testing::StandbyCluster;
using pgwd::testing::StandbySettings;
using pgwd::testing::TestCluster;
using pgwd::testing::TestLoop;
using pgwd::testing::WatchdogHarness;

namespace {

using Clock = std::chrono::steady_clock;

long long ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A Watchdog on a test loop; the clusters are the test's (declared before, destroyed after).
struct Harness : WatchdogHarness {
  std::vector<Stamped<HealthyEvent>> healthy_of(const std::string& target) const {
    std::vector<Stamped<HealthyEvent>> out;
    for (const auto& h : observer.healthy)
      if (h.event.connection.target == target) out.push_back(h);
    return out;
  }
};

struct Host {
  std::string address;
  int port;
  /// ServerInfo::host: the entry of the DSN's list, as "host:port" (the port tells apart entries
  /// with the same address).
  std::string label() const { return address + ":" + std::to_string(port); }
};

// "host=A,B port=P,Q user=watchdog password=... dbname=postgres application_name=<app> <extra>"
// (test passwords are hex: no quoting needed).
std::string multi_host_dsn(const std::vector<Host>& hosts, const std::string& password,
                           const std::string& application_name, const std::string& extra = {}) {
  std::string host_list;
  std::string port_list;
  for (const auto& h : hosts) {
    if (!host_list.empty()) {
      host_list += ',';
      port_list += ',';
    }
    host_list += h.address;
    port_list += std::to_string(h.port);
  }
  std::string dsn = "host=" + host_list + " port=" + port_list +
                    " user=watchdog password=" + password +
                    " dbname=postgres application_name=" + application_name;
  if (!extra.empty()) dsn += " " + extra;
  return dsn;
}

TargetOptions target(const std::string& name, std::string conninfo) {
  TargetOptions o;
  o.name = name;
  o.conninfo = std::move(conninfo);
  o.backoff_initial = 50ms;
  o.backoff_max = 400ms;
  return o;
}

bool contains(const std::vector<int>& pids, int pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

}  // namespace

TEST_CASE("multi host: target_session_attrs picks the host of the right role whatever the order") {
  // The standby listens on 127.0.0.2 so that ServerInfo::host tells the two apart.
  TestCluster primary;
  StandbyCluster standby(primary, StandbySettings{.listen_address = "127.0.0.2"});
  Harness h;
  const Host p{primary.host(), primary.port()};
  const Host s{standby.host(), standby.port()};
  const std::string password = primary.password();

  h.watchdog->add_target(target("mh_primary", multi_host_dsn({s, p}, password, "mh_primary",
                                                             "target_session_attrs=primary")));
  h.watchdog->add_target(target(
      "mh_rw", multi_host_dsn({s, p}, password, "mh_rw", "target_session_attrs=read-write")));
  h.watchdog->add_target(target("mh_standby", multi_host_dsn({p, s}, password, "mh_standby",
                                                             "target_session_attrs=standby")));
  h.watchdog->add_target(
      target("mh_prefer",
             multi_host_dsn({p, s}, password, "mh_prefer", "target_session_attrs=prefer-standby")));
  h.watchdog->add_target(target("mh_any", multi_host_dsn({s, p}, password, "mh_any")));
  REQUIRE(h.loop.run_until(
      [&] {
        return h.all_healthy("mh_primary", 1) && h.all_healthy("mh_rw", 1) &&
               h.all_healthy("mh_standby", 1) && h.all_healthy("mh_prefer", 1) &&
               h.all_healthy("mh_any", 1);
      },
      15s));

  const auto expect_on = [&](const std::string& name, const Host& host, bool on_standby) {
    INFO("target ", name);
    const auto healthy = h.healthy_of(name);
    REQUIRE(healthy.size() == 1);
    const ServerInfo& server = healthy[0].event.server;
    CHECK(server.host == host.label());
    CHECK(server.in_hot_standby == (on_standby ? "on" : "off"));
    const auto pids = on_standby ? standby.backend_pids(name) : primary.backend_pids(name);
    CHECK(pids == std::vector<int>{server.backend_pid});
    CHECK((on_standby ? primary.backend_pids(name) : standby.backend_pids(name)).empty());
    // One attempt walked the list: the host of the wrong role is not a failed attempt.
    CHECK(healthy[0].event.attempt == 1);
    CHECK(h.metric("pgwatchdog_in_hot_standby", {{"target", name}}) == (on_standby ? 1 : 0));
    MESSAGE(name, ": on ", server.host, " (backend pid ", server.backend_pid, ")");
  };
  expect_on("mh_primary", p, false);  // standby listed first, skipped
  expect_on("mh_rw", p, false);
  expect_on("mh_standby", s, true);  // primary listed first, skipped
  expect_on("mh_prefer", s, true);   // primary listed first, but a standby is preferred
  expect_on("mh_any", s, true);      // first host, whatever its role
  CHECK(h.observer.connect_failures.empty());
  CHECK(h.observer.down.empty());
}

// A helper thread stops the primary and promotes the standby while the loop runs: CI also runs
// this under ThreadSanitizer.
TEST_SUITE_BEGIN("thread");

TEST_CASE(
    "multi host: failover - primary stopped and standby promoted - healthy on the former "
    "standby within a second of the promotion") {
  TestCluster primary;
  StandbyCluster standby(primary, StandbySettings{.listen_address = "127.0.0.2"});
  Harness h;
  const Host p{primary.host(), primary.port()};
  const Host s{standby.host(), standby.port()};
  constexpr std::size_t n = 2;
  TargetOptions o = target("failover", multi_host_dsn({p, s}, primary.password(), "failover",
                                                      "target_session_attrs=primary"));
  o.connections = static_cast<int>(n);
  o.heartbeat = 300ms;
  o.probe_timeout = 1s;
  o.connect_timeout = 1s;
  h.watchdog->add_target(o);
  REQUIRE(h.loop.run_until([&] { return h.all_healthy("failover", n); }, 10s));
  for (const auto& e : h.observer.healthy) CHECK(e.event.server.host == p.label());
  CHECK(h.metric("pgwatchdog_in_hot_standby", {{"target", "failover"}}) == 0);

  std::atomic<bool> done{false};
  std::atomic<Clock::rep> stopped_at{0};
  std::atomic<Clock::rep> promoted_at{0};
  std::string error;
  // The loop runs on this thread: its wait for a CPU from here on is the machine's share of the
  // way back (support/restart_checks.hpp).
  const pgwd::testing::CpuWaitSince loop_wait;
  std::thread failover([&] {
    try {
      primary.stop(ShutdownMode::immediate);
      stopped_at = Clock::now().time_since_epoch().count();
      standby.promote();
      promoted_at = Clock::now().time_since_epoch().count();
    } catch (const std::exception& e) {
      error = e.what();
    }
    done = true;
  });
  const bool back = h.loop.run_until(
      [&] { return done && h.observer.healthy.size() >= 2 * n && h.all_healthy("failover", n); },
      30s);
  const auto loop_waited = loop_wait.waited();
  failover.join();
  REQUIRE_MESSAGE(error.empty(), error);
  REQUIRE(back);

  const Clock::time_point stopped{Clock::duration(stopped_at.load())};
  const Clock::time_point promoted{Clock::duration(promoted_at.load())};
  Clock::time_point last_healthy{};
  const auto pids = standby.backend_pids("failover");
  for (std::size_t i = n; i < h.observer.healthy.size(); ++i) {
    const auto& e = h.observer.healthy[i];
    last_healthy = std::max(last_healthy, e.at);
    CHECK(e.event.server.host == s.label());
    CHECK(e.event.server.in_hot_standby == "off");
    CHECK(contains(pids, e.event.server.backend_pid));
  }
  CHECK(pids.size() == n);
  MESSAGE("all ", n, " connections healthy on the former standby ", ms(last_healthy - promoted),
          " ms after pg_ctl promote -w returned, ", ms(last_healthy - stopped),
          " ms after the primary stopped (promotion took ", ms(promoted - stopped), " ms); ",
          h.observer.connect_failures.size(), " failed attempts meanwhile");
  // What pgwatchdog decided (each returning attempt within a retry delay of the promotion) and
  // "within a second" less the waits for a CPU of the loop and of the promoted server.
  pgwd::testing::check_back_after_ready("failover", h.observer, "failover", n, promoted,
                                        o.backoff_max, loop_waited, standby.postmaster_pid());

  CHECK(h.observer.down.size() == n);
  // An immediate stop: WARNING 57P01 before each backend exits, or, where the server's best
  // effort fails, EOF alone (support/sigquit_down.hpp).
  for (const auto& d : h.observer.down) {
    INFO(ms(d.at - stopped), " ms after pg_ctl stop returned");
    pgwd::testing::check_sigquit_down(d.event, Cause::immediate_shutdown, "57P01");
  }
  // While the primary was down and the standby not yet promoted, no host would do.
  if (!h.observer.connect_failures.empty())
    MESSAGE("meanwhile, e.g.: ", to_string(h.observer.connect_failures[0].event.cause), ": ",
            h.observer.connect_failures[0].event.message);
  // The walk's cause is its last host's: the standby, not yet promoted (wrong_role), or refused
  // (connect_failed); or, on a loaded machine, the standby's fork and login past the 1 s deadline
  // of each host (connect_timeout, the machine's doing; the way back is bounded above).
  for (const auto& f : h.observer.connect_failures) {
    INFO(f.event.message);
    CHECK((f.event.cause == Cause::wrong_role || f.event.cause == Cause::connect_failed ||
           f.event.cause == Cause::connect_timeout));
  }
  CHECK(h.metric("pgwatchdog_up", {{"target", "failover"}}) == 1);
  CHECK(h.metric("pgwatchdog_in_hot_standby", {{"target", "failover"}}) == 0);
  CHECK(h.metric("pgwatchdog_reconnects_total", {{"target", "failover"}, {"result", "success"}}) ==
        n);
}

TEST_SUITE_END();

TEST_CASE(
    "multi host: a hung first host is skipped after connect_timeout and the second one "
    "is used") {
  TestCluster hung;
  // The DSN carries one password, hung's: let the watchdog role in without one on the second.
  TestCluster good(ClusterSettings{.hba_lines = {"host all watchdog 127.0.0.0/8 trust"}});
  Harness h;
  // SIGSTOP the first server's postmaster: the kernel still completes the TCP handshake (the
  // listen backlog), but nothing ever answers the startup packet.
  hung.pause_backend(hung.postmaster_pid());

  TargetOptions o =
      target("skip_hung", multi_host_dsn({{hung.host(), hung.port()}, {good.host(), good.port()}},
                                         hung.password(), "skip_hung"));
  o.connect_timeout = 1s;
  const auto added = Clock::now();
  const pgwd::testing::CpuWaitSince loop_wait;
  h.watchdog->add_target(o);
  REQUIRE(h.loop.run_until([&] { return h.all_healthy("skip_hung", 1); }, 10s));
  const auto took = h.observer.healthy[0].at - added;
  // The machine's share: the loop's thread (its deadline timer fires late) and the good
  // server's new backend (its fork and login) waiting for a CPU.
  const auto waited = loop_wait.waited() + pgwd::testing::lifetime_cpu_wait(
                                               h.observer.healthy[0].event.server.backend_pid);
  MESSAGE("healthy on the second host ", ms(took),
          " ms after add_target (connect_timeout 1 s); the loop and the new backend waited ",
          ms(waited), " ms for a CPU meanwhile");
  CHECK(took >= 1s - 50ms);  // the first host was really tried, for its whole deadline
  CHECK(took < 1s + 500ms + waited);
  CHECK(h.observer.healthy[0].event.attempt == 1);
  CHECK(h.observer.healthy[0].event.server.host == Host{good.host(), good.port()}.label());
  CHECK(h.observer.connect_failures.empty());
  CHECK(good.backend_pids("skip_hung") ==
        std::vector<int>{h.observer.healthy[0].event.server.backend_pid});
  CHECK(h.metric("pgwatchdog_up", {{"target", "skip_hung"}}) == 1);

  // Resumed, the first server serves again (and finds the abandoned connection closed).
  hung.resume_backend(hung.postmaster_pid());
  CHECK(hung.query_value("SELECT 1") == "1");
}

TEST_CASE("multi host: an authentication failure on the first host stops the walk like libpq") {
  TestCluster first;
  // Logs every authorized connection with its application_name: none of ours may reach it.
  TestCluster second(ClusterSettings{.extra_config = {"log_connections = on"}});
  Harness h;
  // The second host's password, which the first host rejects (28P01).
  h.watchdog->add_target(target(
      "mh_auth", multi_host_dsn({{first.host(), first.port()}, {second.host(), second.port()}},
                                second.password(), "mh_auth")));
  REQUIRE(h.loop.run_until([&] { return h.observer.connect_failures.size() >= 3; }, 10s));
  MESSAGE("mh_auth: ", h.observer.connect_failures[0].event.message);
  for (const auto& f : h.observer.connect_failures) {
    INFO(f.event.message);
    CHECK(f.event.cause == Cause::auth_failed);
    CHECK(f.event.sqlstate == "28P01");
    CHECK(f.event.message.find(second.password()) == std::string::npos);
  }
  CHECK(h.observer.healthy.empty());
  CHECK(h.metric("pgwatchdog_up", {{"target", "mh_auth"}}) == 0);
  const std::string second_log = pgwd::testing::run_checked({"cat", second.log_path()});
  CHECK(second_log.find("connection authorized") != std::string::npos);  // the admin's, at start
  CHECK(second_log.find("application_name=mh_auth") == std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
