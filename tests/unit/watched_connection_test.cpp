// The connection life cycle (docs/design.md §5) walked through every transition with a scripted
// link and a fake clock: the I/O is scripted here, its real behaviour is tested against PostgreSQL
// in tests/integration.
#include "health/watched_connection.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/fake_loop.hpp"
#include "support/scripted_link.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::FakeLoop;
using pgwd::testing::LowestRandom;
using pgwd::testing::ScriptedLink;

namespace {

struct RecordingEvents final : ConnectionEvents {
  std::vector<ConnectionState> states;
  std::vector<HealthyEvent> healthy;
  std::vector<DownEvent> down;
  std::vector<ReconnectAttemptEvent> attempts;
  std::vector<ConnectFailedEvent> failures;
  std::vector<ProbeEvent> probes;
  std::vector<NotificationEvent> notifications;
  std::vector<RoleChangeEvent> role_changes;
  int wakeups = 0;

  void on_state_change(const StateChangeEvent& e) override { states.push_back(e.to); }
  void on_healthy(const HealthyEvent& e) override { healthy.push_back(e); }
  void on_down(const DownEvent& e) override { down.push_back(e); }
  void on_reconnect_attempt(const ReconnectAttemptEvent& e) override { attempts.push_back(e); }
  void on_connect_failed(const ConnectFailedEvent& e) override { failures.push_back(e); }
  void on_probe(const ProbeEvent& e) override { probes.push_back(e); }
  void on_notification(const NotificationEvent& e) override { notifications.push_back(e); }
  void on_role_change(const RoleChangeEvent& e) override { role_changes.push_back(e); }
  void on_wakeup(const ConnectionRef&) override { ++wakeups; }
};

struct Fixture {
  LifecycleSettings settings{5s, 2s, 0s, 100ms, 1s};
  FakeLoop loop;
  LowestRandom random;
  RecordingEvents events;
  ScriptedLink* link = nullptr;
  std::unique_ptr<WatchedConnection> connection;

  void build() {
    connection =
        std::make_unique<WatchedConnection>(ConnectionRef{"primary", 0}, settings, loop, random,
                                            events, pgwd::testing::scripted_links(link));
  }
  LinkCallbacks& cb() { return link->cb; }

  // Drives a fresh connection to healthy.
  void connect() {
    build();
    connection->start();
    cb().on_resolved();
    cb().on_connected({ServerInfo{4242, 150020, "off"}, {}});
    REQUIRE(connection->state() == ConnectionState::healthy);
    link->calls.clear();
    events.states.clear();
  }
  bool called(const std::string& what) const {
    return std::find(link->calls.begin(), link->calls.end(), what) != link->calls.end();
  }
};

using States = std::vector<ConnectionState>;

}  // namespace

TEST_CASE_FIXTURE(Fixture, "lifecycle: start resolves - connects and watches the idle connection") {
  build();
  CHECK(connection->state() == ConnectionState::waiting);
  connection->start();
  CHECK(connection->state() == ConnectionState::resolving);
  CHECK(link->calls == std::vector<std::string>{"connect"});
  cb().on_resolved();
  CHECK(connection->state() == ConnectionState::connecting);
  cb().on_connected({ServerInfo{4242, 150020, "off"}, {}});
  CHECK(connection->state() == ConnectionState::healthy);
  CHECK(link->calls.back() == "watch_idle");
  REQUIRE(events.healthy.size() == 1);
  CHECK(events.healthy[0].attempt == 1);
  CHECK_FALSE(events.healthy[0].outage.has_value());
  CHECK(events.healthy[0].server.backend_pid == 4242);
  CHECK(events.states ==
        States{ConnectionState::resolving, ConnectionState::connecting, ConnectionState::healthy});
}

TEST_CASE_FIXTURE(Fixture, "lifecycle: an idle healthy connection arms no timer at all") {
  connect();
  CHECK(loop.armed_timers() == 0);
  loop.advance(24h);
  CHECK(link->calls.empty());
  CHECK(events.probes.empty());
  CHECK(connection->state() == ConnectionState::healthy);
}

TEST_CASE_FIXTURE(
    Fixture, "lifecycle: activity explained by what arrived goes back to healthy without a probe") {
  connect();
  link->next_inspection = {Inspection::Verdict::explained, {}};
  link->next_inspection.arrived.notifications = {{"jobs", "hello", 77}};
  cb().on_readable();
  CHECK(events.wakeups == 1);
  CHECK(link->calls == std::vector<std::string>{"inspect", "watch_idle"});
  CHECK(events.states == States{ConnectionState::inspecting, ConnectionState::healthy});
  REQUIRE(events.notifications.size() == 1);
  CHECK(events.notifications[0].channel == "jobs");
  CHECK(events.notifications[0].payload == "hello");
  CHECK(events.down.empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: unexplained activity is probed - a good answer means healthy") {
  connect();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  CHECK(connection->state() == ConnectionState::probing);
  CHECK(link->calls == std::vector<std::string>{"inspect", "probe"});
  loop.advance(3ms);
  cb().on_probe_done({});
  CHECK(connection->state() == ConnectionState::healthy);
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].result == ProbeResult::ok);
  CHECK(events.probes[0].duration == Nanos(3ms));
  CHECK(loop.armed_timers() == 0);  // the probe deadline is gone
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: the server ending the session means down - closed - then backoff") {
  connect();
  link->next_inspection = {Inspection::Verdict::went_away,
                           {Cause::server_shutdown, "57P01", "terminating"}};
  cb().on_readable();
  CHECK(events.states ==
        States{ConnectionState::inspecting, ConnectionState::down, ConnectionState::backoff});
  CHECK(link->calls == std::vector<std::string>{"inspect", "close"});
  REQUIRE(events.down.size() == 1);
  CHECK(events.down[0].cause == Cause::server_shutdown);
  CHECK(events.down[0].sqlstate == "57P01");
  CHECK(events.probes.empty());
}

TEST_CASE_FIXTURE(Fixture, "lifecycle: a failed probe means down with the link's cause") {
  connect();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  cb().on_probe_done({Failure{Cause::probe_failed, "42601", "syntax error"}, {}});
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].result == ProbeResult::error);
  REQUIRE(events.down.size() == 1);
  CHECK(events.down[0].cause == Cause::probe_failed);
  CHECK(connection->state() == ConnectionState::backoff);
}

TEST_CASE_FIXTURE(Fixture, "lifecycle: the probe deadline fires: down with probe_timeout") {
  connect();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  loop.advance(2s - 1ns);
  CHECK(connection->state() == ConnectionState::probing);
  loop.advance(1ns);
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].result == ProbeResult::timeout);
  REQUIRE(events.down.size() == 1);
  CHECK(events.down[0].cause == Cause::probe_timeout);
  CHECK(called("close"));
  CHECK(connection->state() == ConnectionState::backoff);
  // A late answer after the deadline changes nothing.
  cb().on_probe_done({});
  CHECK(connection->state() == ConnectionState::backoff);
}

TEST_CASE_FIXTURE(
    Fixture,
    "lifecycle: the connect deadline fires: attempt failed - backoff - then a new attempt") {
  build();
  connection->start();
  cb().on_resolved();
  loop.advance(5s);
  CHECK(connection->state() == ConnectionState::backoff);
  CHECK(called("close"));
  REQUIRE(events.failures.size() == 1);
  CHECK(events.failures[0].cause == Cause::connect_timeout);
  CHECK(events.failures[0].attempt == 1);
  CHECK(events.failures[0].retry_in == Nanos(50ms));
  link->calls.clear();
  loop.advance(50ms);
  CHECK(connection->state() == ConnectionState::resolving);
  CHECK(link->calls == std::vector<std::string>{"connect"});
  REQUIRE(events.attempts.size() == 1);
  CHECK(events.attempts[0].attempt == 2);
}

TEST_CASE_FIXTURE(
    Fixture, "lifecycle: repeated failures back off exponentially up to the cap - success resets") {
  build();
  connection->start();
  std::vector<Nanos> delays;
  for (int i = 0; i < 6; ++i) {
    cb().on_connect_failed(
        {Failure{Cause::auth_failed, "28P01", "password authentication failed"}, {}});
    delays.push_back(events.failures.back().retry_in);
    loop.advance(events.failures.back().retry_in);
    REQUIRE(connection->state() == ConnectionState::resolving);
  }
  CHECK(delays == std::vector<Nanos>{50ms, 100ms, 200ms, 400ms, 500ms, 500ms});
  CHECK(events.failures.back().attempt == 6);
  CHECK(events.failures.back().sqlstate == "28P01");
  cb().on_connected({});
  CHECK(events.healthy.back().attempt == 7);
  // After a success the next loss starts from the initial delay again.
  link->next_inspection = {Inspection::Verdict::went_away, {Cause::closed, "", "eof"}};
  cb().on_readable();
  CHECK(loop.armed_timers() == 1);
  loop.advance(49ms);
  CHECK(connection->state() == ConnectionState::backoff);
  loop.advance(1ms);
  CHECK(connection->state() == ConnectionState::resolving);
}

TEST_CASE_FIXTURE(Fixture, "lifecycle: the outage is measured from the loss to healthy again") {
  connect();
  link->next_inspection = {Inspection::Verdict::went_away, {Cause::closed, "", "eof"}};
  cb().on_readable();
  loop.advance(50ms);  // backoff
  cb().on_resolved();
  loop.advance(7ms);
  cb().on_connected({});
  REQUIRE(events.healthy.size() == 2);
  REQUIRE(events.healthy[1].outage.has_value());
  CHECK(*events.healthy[1].outage == Nanos(57ms));
  CHECK(events.healthy[1].attempt == 1);
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: heartbeat() sends the link's heartbeat - not the probe query - and "
                  "only when healthy") {
  settings.heartbeat = 1s;  // the target's period: the connection arms nothing for it
  connect();
  CHECK(loop.armed_timers() == 0);
  loop.advance(1h);
  CHECK(link->calls.empty());

  CHECK(connection->heartbeat());
  CHECK(link->calls == std::vector<std::string>{"heartbeat"});
  CHECK(connection->state() == ConnectionState::probing);
  CHECK_FALSE(connection->heartbeat());  // one round trip at a time
  loop.advance(30ms);
  cb().on_probe_done({});
  CHECK(connection->state() == ConnectionState::healthy);
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].heartbeat);
  CHECK(events.probes[0].result == ProbeResult::ok);
  CHECK(events.probes[0].duration == Nanos(30ms));

  // The probe after unexplained activity is the probe query, and says so.
  link->calls.clear();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  CHECK(link->calls == std::vector<std::string>{"inspect", "probe"});
  cb().on_probe_done({});
  REQUIRE(events.probes.size() == 2);
  CHECK_FALSE(events.probes[1].heartbeat);
}

TEST_CASE_FIXTURE(Fixture, "lifecycle: heartbeat() outside healthy does nothing") {
  build();
  CHECK_FALSE(connection->heartbeat());  // waiting
  connection->start();
  CHECK_FALSE(connection->heartbeat());  // resolving
  CHECK(link->calls == std::vector<std::string>{"connect"});
  CHECK(events.probes.empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: heartbeat with a backend that never answers: down within the probe "
                  "timeout") {
  connect();
  REQUIRE(connection->heartbeat());
  loop.advance(2s - 1ns);
  CHECK(events.down.empty());
  loop.advance(1ns);
  REQUIRE(events.down.size() == 1);
  CHECK(events.down[0].cause == Cause::probe_timeout);
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].heartbeat);
  CHECK(events.probes[0].result == ProbeResult::timeout);
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: retry_within brings the next attempt forward - never later") {
  connect();
  cb().on_readable();  // unexplained by default: probe
  cb().on_probe_done({Failure{Cause::closed, "", "gone"}, {}});
  REQUIRE(connection->state() == ConnectionState::backoff);
  // LowestRandom: the first delay is backoff_initial / 2 = 50 ms.
  connection->retry_within(1s);  // later than the backoff's own: no change
  loop.advance(50ms);
  CHECK(connection->state() == ConnectionState::resolving);
  cb().on_connect_failed({{Cause::connect_failed, "", "refused"}, {}});
  REQUIRE(connection->state() == ConnectionState::backoff);
  REQUIRE(events.failures.size() == 1);
  CHECK(events.failures[0].retry_in == Nanos(100ms));
  loop.advance(10ms);
  connection->retry_within(20ms);  // sooner: 20 ms from now, not 90
  CHECK(connection->state() == ConnectionState::backoff);
  loop.advance(20ms - 1ns);
  CHECK(connection->state() == ConnectionState::backoff);
  loop.advance(1ns);
  CHECK(connection->state() == ConnectionState::resolving);
  connection->retry_within(0ns);  // not in backoff: nothing
  loop.advance(1s);
  CHECK(connection->state() == ConnectionState::resolving);  // the attempt's own deadline is 5 s
}

TEST_CASE_FIXTURE(Fixture, "lifecycle: stop closes the link and cancels every timer") {
  settings.heartbeat = 1s;
  connect();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  CHECK(loop.armed_timers() == 1);
  connection->stop();
  CHECK(connection->state() == ConnectionState::stopped);
  CHECK(called("close"));
  CHECK(loop.armed_timers() == 0);
  loop.advance(1h);
  CHECK(events.down.empty());
}

TEST_CASE_FIXTURE(Fixture, "lifecycle: a wake-up outside the healthy state is ignored") {
  build();
  connection->start();
  cb().on_readable();
  CHECK(events.wakeups == 0);
  CHECK(link->calls == std::vector<std::string>{"connect"});
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: a heartbeat that shows a new role reports it and keeps a connection "
                  "with no requirement") {
  build();
  connection->start();
  link->server = {4242, 150020, "h:5432", "on", "on"};
  cb().on_connected({link->server, {}});
  link->server.in_hot_standby = "off";  // promoted while idle: only a round trip shows it
  link->server.default_transaction_read_only = "off";
  REQUIRE(connection->heartbeat());
  cb().on_probe_done({});
  REQUIRE(events.role_changes.size() == 1);
  CHECK(events.role_changes[0].in_hot_standby == "off");
  CHECK(events.role_changes[0].previous == "on");
  CHECK(connection->state() == ConnectionState::healthy);
  REQUIRE(connection->heartbeat());
  cb().on_probe_done({});
  CHECK(events.role_changes.size() == 1);  // reported once, not at every heartbeat
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: a role first known at a heartbeat (before PostgreSQL 14) is no role "
                  "change") {
  build();
  connection->start();
  link->server = {4242, 130010, "h:5432", "", ""};
  cb().on_connected({link->server, {}});
  link->server.in_hot_standby = "off";  // from SELECT pg_is_in_recovery()
  REQUIRE(connection->heartbeat());
  cb().on_probe_done({});
  CHECK(events.role_changes.empty());
  link->server.in_hot_standby = "on";  // and from then on a change is one
  REQUIRE(connection->heartbeat());
  cb().on_probe_done({});
  CHECK(events.role_changes.size() == 1);
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: a heartbeat that shows the wrong role means down with wrong_role") {
  settings.role = RoleRequirement::standby;
  build();
  connection->start();
  link->server = {4242, 150020, "h:5432", "on", "on"};
  cb().on_connected({link->server, {}});
  link->server.in_hot_standby = "off";
  link->server.default_transaction_read_only = "off";
  REQUIRE(connection->heartbeat());
  cb().on_probe_done({});
  REQUIRE(events.down.size() == 1);
  CHECK(events.down[0].cause == Cause::wrong_role);
  CHECK(events.down[0].message.find("target_session_attrs=standby") != std::string::npos);
  CHECK(connection->state() == ConnectionState::backoff);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
