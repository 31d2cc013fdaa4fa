// Server role: a real streaming standby (pg_basebackup of a throwaway primary), promoted while
// the watchdog watches it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>

#include "support/background_call.hpp"
#include "support/poll_deadline.hpp"
#include "support/standby_cluster.hpp"
#include "support/tcp_proxy.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::CallOutcome;
using pgwd::testing::heartbeats_sent_between;
using pgwd::testing::RecordingObserver;
using pgwd::testing::StandbyCluster;
using pgwd::testing::TcpProxy;
using pgwd::testing::TestCluster;
using pgwd::testing::TestLoop;
using pgwd::testing::WatchdogHarness;
using pgwd::testing::run_while_calling;

namespace {

using Clock = std::chrono::steady_clock;

long long ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// A primary and its hot standby, started before the Watchdog and stopped after it.
struct PrimaryAndStandby {
  TestCluster primary;
  StandbyCluster standby{primary};
};

// The two clusters and a Watchdog on a test loop recording every event.
struct RoleFixture : PrimaryAndStandby, WatchdogHarness {
  // A target on the standby; application_name = name.
  TargetOptions on_standby(const std::string& name, const std::string& extra = {}) const {
    TargetOptions o;
    o.name = name;
    o.conninfo = standby.conninfo(name) + (extra.empty() ? "" : " " + extra);
    o.backoff_initial = 50ms;
    o.backoff_max = 400ms;
    return o;
  }
};

}  // namespace

// The two clusters, HAProxy (mode tcp) in front of the standby, and a Watchdog.
struct ProxiedStandby : PrimaryAndStandby {
  TcpProxy proxy{standby.host(), standby.port()};
};
struct ProxiedRoleFixture : ProxiedStandby, WatchdogHarness {};

// A helper thread promotes the standby while the loop runs: CI also runs these under
// ThreadSanitizer.
TEST_SUITE_BEGIN("thread");

TEST_CASE_FIXTURE(RoleFixture,
                  "role: a promoted standby - on_role_change within one heartbeat: in_hot_standby "
                  "1 then 0 and not one statement sent") {
  REQUIRE(standby.in_recovery());
  TargetOptions o = on_standby("promoted");
  o.heartbeat = 300ms;
  o.probe_timeout = 1s;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("promoted", 1); }, 10s));
  REQUIRE(observer.healthy.size() == 1);
  CHECK(observer.healthy[0].event.server.in_hot_standby == "on");
  CHECK(observer.healthy[0].event.server.default_transaction_read_only == "off");
  CHECK(metric("pgwatchdog_in_hot_standby", {{"target", "promoted"}}) == 1);
  // Heartbeats on an unchanged standby report nothing.
  REQUIRE(loop.run_until([&] { return observer.probes.size() >= 2; }, 3s));
  CHECK(observer.role_changes.empty());

  // The promotion starts just after a heartbeat probe: the next probe, the first that can see the
  // new role, is due one heartbeat later, whatever pg_ctl's own polling adds.
  {
    const CallOutcome promotion = run_while_calling(
        loop, [&] { standby.promote(); }, [&] { return !observer.role_changes.empty(); }, 30s);
    REQUIRE(promotion.seen);
    const auto& change = observer.role_changes[0];
    MESSAGE("on_role_change ", ms(change.at - promotion.returned_at),
            " ms after pg_ctl promote -w returned (heartbeat 300 ms; pg_ctl polls every 100 ms)");
    CHECK(change.event.connection.target == "promoted");
    CHECK(change.event.connection.index == 0);
    CHECK(change.event.in_hot_standby == "off");
    CHECK(change.event.previous == "on");
    // Seen by the first heartbeat sent after the promotion: counted in the watchdog's own round
    // trips, not in wall time, which the machine's load decides.
    CHECK(heartbeats_sent_between(observer, "promoted", promotion.returned_at, change.at) <= 1);
  }
  CHECK_FALSE(standby.in_recovery());
  CHECK(observer.role_changes.size() == 1);
  CHECK(metric("pgwatchdog_in_hot_standby", {{"target", "promoted"}}) == 0);

  // No target_session_attrs: any role will do, so the connection simply stays.
  loop.run_for(700ms);
  CHECK(observer.down.empty());
  CHECK(observer.connect_failures.empty());
  CHECK(observer.healthy.size() == 1);
  // Healthy again once the heartbeat in flight, if any, is answered: with one every 225-263 ms
  // (heartbeat 300 ms), a look at any one instant may find the connection probing.
  CHECK(loop.run_until([&] { return all_healthy("promoted", 1); }, 5s));
  CHECK(observer.role_changes.size() == 1);
  CHECK(metric("pgwatchdog_up", {{"target", "promoted"}}) == 1);
  CHECK(metric("pgwatchdog_in_hot_standby", {{"target", "promoted"}}) == 0);
  CHECK(standby.backend_pids("promoted") ==
        std::vector<int>{observer.healthy[0].event.server.backend_pid});
  // The role came back with the heartbeat's lone Sync: every round trip was a heartbeat, and
  // the server (log_statement = all) logged no statement of this session.
  REQUIRE(!observer.probes.empty());
  for (const auto& p : observer.probes) {
    CHECK(p.event.heartbeat);
    CHECK(p.event.result == ProbeResult::ok);
  }
  CHECK(standby.count_statements("promoted") == 0);
}

TEST_CASE_FIXTURE(RoleFixture,
                  "role: target_session_attrs=standby - down with wrong_role within one heartbeat "
                  "of the promotion with no SELECT sent and reconnects refused with wrong_role") {
  TargetOptions o = on_standby("needs_standby", "target_session_attrs=standby");
  o.heartbeat = 300ms;
  o.probe_timeout = 1s;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("needs_standby", 1); }, 10s));
  CHECK(observer.healthy[0].event.server.in_hot_standby == "on");
  CHECK(metric("pgwatchdog_up", {{"target", "needs_standby"}}) == 1);
  CHECK(metric("pgwatchdog_in_hot_standby", {{"target", "needs_standby"}}) == 1);

  {
    const CallOutcome promotion = run_while_calling(
        loop, [&] { standby.promote(); },
        [&] { return !observer.down.empty() && observer.connect_failures.size() >= 3; }, 30s);
    REQUIRE(promotion.seen);
    MESSAGE("down ", ms(observer.down[0].at - promotion.returned_at),
            " ms after pg_ctl promote -w returned (heartbeat 300 ms): ",
            observer.down[0].event.message);
    // Within one heartbeat, counted in round trips: the first sent after the promotion saw it.
    CHECK(heartbeats_sent_between(observer, "needs_standby", promotion.returned_at,
                                  observer.down[0].at) <= 1);
  }
  REQUIRE(observer.down.size() == 1);
  CHECK(observer.down[0].event.cause == Cause::wrong_role);
  CHECK(observer.down[0].event.connection.target == "needs_standby");
  CHECK(lower(observer.down[0].event.message).find("standby") != std::string::npos);
  for (const auto& f : observer.connect_failures) {
    CHECK(f.event.cause == Cause::wrong_role);
    CHECK(lower(f.event.message).find("standby") != std::string::npos);
    CHECK(f.event.message.find(standby.password()) == std::string::npos);
    CHECK(f.event.retry_in > 0ms);
  }
  CHECK(observer.healthy.size() == 1);  // never healthy again on the new primary
  CHECK(metric("pgwatchdog_up", {{"target", "needs_standby"}}) == 0);
  CHECK(metric("pgwatchdog_disconnects_total",
               {{"target", "needs_standby"}, {"cause", "wrong_role"}}) == 1);
  CHECK(metric("pgwatchdog_connect_failures_total",
               {{"target", "needs_standby"}, {"cause", "wrong_role"}}) ==
        static_cast<double>(observer.connect_failures.size()));
  CHECK(
      metric("pgwatchdog_reconnects_total", {{"target", "needs_standby"}, {"result", "failure"}}) ==
      static_cast<double>(observer.connect_failures.size()));
  CHECK(log_text->str().find(standby.password()) == std::string::npos);
  // What showed the new role was a heartbeat, and no statement reached the server.
  REQUIRE(!observer.probes.empty());
  for (const auto& p : observer.probes) CHECK(p.event.heartbeat);
  CHECK(standby.count_statements("needs_standby") == 0);
}

TEST_CASE_FIXTURE(ProxiedRoleFixture,
                  "role: target_session_attrs=standby through HAProxy (mode tcp) - down with "
                  "wrong_role at the first heartbeat after the server behind it is promoted") {
  TargetOptions o;
  o.name = "proxied_standby";
  // The last port= wins: the standby's DSN, through the proxy.
  o.conninfo = standby.conninfo(o.name) + " port=" + std::to_string(proxy.port()) +
               " target_session_attrs=standby";
  o.proxied = true;
  o.heartbeat = 300ms;
  o.probe_timeout = 1s;
  o.backoff_initial = 50ms;
  o.backoff_max = 400ms;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("proxied_standby", 1); }, 10s));
  CHECK(observer.healthy[0].event.server.in_hot_standby == "on");
  // The backend behind the proxy is the standby's.
  REQUIRE(standby.backend_pids("proxied_standby").size() == 1);

  {
    const CallOutcome promotion = run_while_calling(
        loop, [&] { standby.promote(); },
        [&] { return !observer.down.empty() && observer.connect_failures.size() >= 3; }, 30s);
    REQUIRE(promotion.seen);
    MESSAGE("down ", ms(observer.down[0].at - promotion.returned_at),
            " ms after pg_ctl promote -w returned (heartbeat 300 ms): ",
            observer.down[0].event.message);
    // Within one heartbeat, counted in round trips: the first sent after the promotion saw it.
    CHECK(heartbeats_sent_between(observer, "proxied_standby", promotion.returned_at,
                                  observer.down[0].at) <= 1);
  }
  REQUIRE(observer.down.size() == 1);
  CHECK(observer.down[0].event.cause == Cause::wrong_role);
  for (const auto& f : observer.connect_failures) {
    INFO(f.event.message);
    CHECK(f.event.cause == Cause::wrong_role);
  }
  CHECK(observer.healthy.size() == 1);  // never healthy again on the new primary
}

TEST_SUITE_END();

TEST_CASE_FIXTURE(RoleFixture,
                  "role: target_session_attrs=primary or read-write on a standby - never healthy "
                  "and every attempt fails with wrong_role") {
  watchdog->add_target(on_standby("needs_primary", "target_session_attrs=primary"));
  watchdog->add_target(on_standby("needs_rw", "target_session_attrs=read-write"));
  // The control: the same standby without a requirement is fine.
  watchdog->add_target(on_standby("any_role", "target_session_attrs=any"));

  const auto failures_of = [&](const std::string& target) {
    return std::count_if(observer.connect_failures.begin(), observer.connect_failures.end(),
                         [&](const auto& f) { return f.event.connection.target == target; });
  };
  REQUIRE(loop.run_until(
      [&] {
        return failures_of("needs_primary") >= 3 && failures_of("needs_rw") >= 3 &&
               all_healthy("any_role", 1);
      },
      15s));

  for (const auto& h : observer.healthy) CHECK(h.event.connection.target == "any_role");
  CHECK(observer.down.empty());
  for (const auto& f : observer.connect_failures) {
    INFO("target ", f.event.connection.target, ": ", f.event.message);
    CHECK(f.event.connection.target != "any_role");
    CHECK(f.event.cause == Cause::wrong_role);
    CHECK(f.event.sqlstate.empty());
    // Clear: says the server is a standby / read-only.
    const std::string message = lower(f.event.message);
    CHECK((message.find("standby") != std::string::npos ||
           message.find("read-only") != std::string::npos));
    CHECK(f.event.message.find(standby.password()) == std::string::npos);
  }
  for (const auto& f : observer.connect_failures)
    if (f.event.connection.target == "needs_primary") {
      MESSAGE("needs_primary: ", f.event.message);
      break;
    }
  for (const std::string target : {"needs_primary", "needs_rw"}) {
    CHECK(metric("pgwatchdog_up", {{"target", target}}) == 0);
    CHECK(metric("pgwatchdog_connect_failures_total",
                 {{"target", target}, {"cause", "wrong_role"}}) ==
          static_cast<double>(failures_of(target)));
    CHECK(metric("pgwatchdog_in_hot_standby", {{"target", target}}) == 0);  // never connected
  }
  CHECK(metric("pgwatchdog_up", {{"target", "any_role"}}) == 1);
  CHECK(metric("pgwatchdog_in_hot_standby", {{"target", "any_role"}}) == 1);
  // A refused connection does not linger on the standby.
  REQUIRE(loop.run_until(pgwd::testing::at_most_every(
                             50ms, [&] { return standby.backend_pids("needs_primary").empty(); }),
                         30s));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
