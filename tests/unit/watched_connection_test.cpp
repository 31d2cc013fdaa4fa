// The connection life cycle (docs/design.md §5) walked through every transition with a scripted
// link and a fake clock: the I/O is scripted here, its real behaviour is tested against PostgreSQL
// in tests/integration.
#include "health/watched_connection.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "event/guarded_loop.hpp"
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
  std::vector<NoticeEvent> notices;
  std::vector<RoleChangeEvent> role_changes;
  std::vector<std::string> sequence;  ///< "notification", "notice", "down" as they came
  int wakeups = 0;

  void on_state_change(const StateChangeEvent& e) override { states.push_back(e.to); }
  void on_healthy(const HealthyEvent& e) override { healthy.push_back(e); }
  void on_down(const DownEvent& e) override {
    down.push_back(e);
    sequence.emplace_back("down");
  }
  void on_reconnect_attempt(const ReconnectAttemptEvent& e) override { attempts.push_back(e); }
  void on_connect_failed(const ConnectFailedEvent& e) override { failures.push_back(e); }
  void on_probe(const ProbeEvent& e) override { probes.push_back(e); }
  void on_notification(const NotificationEvent& e) override {
    notifications.push_back(e);
    sequence.emplace_back("notification");
  }
  void on_notice(const NoticeEvent& e) override {
    notices.push_back(e);
    sequence.emplace_back("notice");
  }
  void on_role_change(const RoleChangeEvent& e) override { role_changes.push_back(e); }
  void on_wakeup(const ConnectionRef&) override { ++wakeups; }
};

struct Fixture {
  LifecycleSettings settings{5s, 2s, 0s, 100ms, 1s};
  FakeLoop loop;
  LowestRandom random;
  RecordingEvents events;
  ScriptedLink* link = nullptr;
  std::vector<ScriptedLink*> links;  ///< every link made, in order: [1] is the hedge's
  std::unique_ptr<WatchedConnection> connection;

  void build(AttemptGate* gate = nullptr) {
    connection = std::make_unique<WatchedConnection>(
        ConnectionRef{"primary", 0}, settings, loop, random, events,
        pgwd::testing::scripted_links(link, &links), gate);
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

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: what a timed-out probe read before its answer is delivered before "
                  "the down") {
  connect();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  // NOTIFYs read while the probe's answer waits behind more of them.
  link->held.notifications = {{"jobs", "one", 77}, {"jobs", "two", 77}};
  link->held.notices = {{"NOTICE", "00000", "still here"}};
  loop.advance(2s);
  REQUIRE(events.down.size() == 1);
  CHECK(events.down[0].cause == Cause::probe_timeout);
  REQUIRE(events.notifications.size() == 2);
  CHECK(events.notifications[0].payload == "one");
  CHECK(events.notifications[1].payload == "two");
  REQUIRE(events.notices.size() == 1);
  CHECK(events.notices[0].message == "still here");
  CHECK(events.sequence ==
        std::vector<std::string>{"notification", "notification", "notice", "down"});
  // Taken before the link was closed: close() drops whatever is still held.
  const auto taken = std::find(link->calls.begin(), link->calls.end(), "take_arrivals");
  const auto closed = std::find(link->calls.begin(), link->calls.end(), "close");
  CHECK(taken < closed);
  CHECK(closed != link->calls.end());
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

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: the probe deadline takes an answer the socket already holds") {
  connect();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  link->answer = ProbeDone{};  // arrived, and the socket's callback has not run yet
  loop.advance(2s);
  CHECK(called("read_answer"));
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].result == ProbeResult::ok);
  CHECK(events.down.empty());
  CHECK_FALSE(called("close"));
  CHECK(connection->state() == ConnectionState::healthy);
  CHECK(loop.armed_timers() == 0);
}

TEST_CASE_FIXTURE(Fixture,
                  "lifecycle: the probe deadline takes a failure the socket already holds") {
  connect();
  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  cb().on_readable();
  link->answer = ProbeDone{Failure{Cause::server_shutdown, "57P01", "terminating"}, {}};
  loop.advance(2s);
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].result == ProbeResult::error);
  REQUIRE(events.down.size() == 1);
  CHECK(events.down[0].cause == Cause::server_shutdown);  // what the server said, not a timeout
}

TEST_CASE(
    "lifecycle: a probe deadline the pass budget held back is no probe_timeout when the "
    "answer came meanwhile") {
  FakeLoop fake;
  GuardedLoop guarded(fake, {{}, {}, 10ms, 5ms});
  const LifecycleSettings settings{5s, 2s, 0s, 100ms, 1s};
  LowestRandom random;
  RecordingEvents events;
  ScriptedLink* link = nullptr;
  WatchedConnection connection(ConnectionRef{"primary", 0}, settings, guarded, random, events,
                               pgwd::testing::scripted_links(link));
  connection.start();
  link->cb.on_resolved();
  link->cb.on_connected({ServerInfo{4242, 150020, "off"}, {}});
  // The link's socket as a PgSession watches it while a probe waits: its callback reads the answer.
  SocketWatchPtr probe_socket = guarded.make_socket_watch([&](Readiness) {
    if (std::optional<ProbeDone> done = std::exchange(link->answer, std::nullopt))
      link->cb.on_probe_done(*done);
  });
  probe_socket->watch(51, Interest::read);
  // Another connection's socket whose callback takes more than the whole budget.
  SocketWatchPtr busy = guarded.make_socket_watch([&](Readiness) { fake.stall(6ms); });
  busy->watch(50, Interest::read);

  link->next_inspection = {Inspection::Verdict::unexplained, {}};
  link->cb.on_readable();
  REQUIRE(connection.state() == ConnectionState::probing);
  fake.advance(2s - 1ms);
  // One pass: the busy socket spends the budget, and takes the loop past the probe's deadline.
  fake.make_ready(50, {true, false});
  link->answer = ProbeDone{};          // the answer is in the socket before the deadline
  fake.make_ready(51, {true, false});  // ready in the same pass: its callback is declined
  CHECK(guarded.declined() == 1);
  CHECK(connection.state() == ConnectionState::probing);
  // The next pass: the deadline, due first, is declined and queued; the marker runs it before
  // the probe's socket is reported again.
  fake.advance(0ms);
  CHECK(guarded.declined() == 2);
  REQUIRE(events.probes.size() == 1);
  CHECK(events.probes[0].result == ProbeResult::ok);
  CHECK(events.down.empty());
  CHECK(connection.state() == ConnectionState::healthy);
  // The socket's callback, when it runs, finds the answer taken.
  fake.make_ready(51, {true, false});
  CHECK(events.probes.size() == 1);
  CHECK(connection.state() == ConnectionState::healthy);
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

TEST_CASE("server-wide end: an immediate shutdown and a crash, not a fast shutdown or a close") {
  CHECK(server_wide_end(Cause::immediate_shutdown));
  CHECK(server_wide_end(Cause::server_crash));
  // A fast shutdown's FATAL 57P01 is also what pg_terminate_backend sends to one backend.
  CHECK_FALSE(server_wide_end(Cause::server_shutdown));
  CHECK_FALSE(server_wide_end(Cause::closed));
  CHECK_FALSE(server_wide_end(Cause::probe_timeout));
}

TEST_CASE_FIXTURE(Fixture,
                  "backoff: after a server-wide end a scouted connection waits for its scout - "
                  "no retry of its own - and retry_within() brings it") {
  settings.scouted = true;
  for (const Cause cause : {Cause::immediate_shutdown, Cause::server_crash}) {
    const std::string cause_name(to_string(cause));
    CAPTURE(cause_name);
    events.down.clear();
    events.attempts.clear();
    connect();
    link->next_inspection = {Inspection::Verdict::went_away, {cause, "57P01", "terminating"}};
    cb().on_readable();
    REQUIRE(events.down.size() == 1);
    CHECK(connection->state() == ConnectionState::backoff);
    CHECK(loop.armed_timers() == 0);
    loop.advance(1h);
    CHECK(connection->state() == ConnectionState::backoff);
    CHECK(events.attempts.empty());
    link->calls.clear();
    connection->retry_within(Nanos::zero());  // the scout's turn
    loop.advance(Nanos::zero());
    CHECK(connection->state() == ConnectionState::resolving);
    CHECK(link->calls == std::vector<std::string>{"connect"});
    REQUIRE(events.attempts.size() == 1);
    // Refused while the server is still away: from here on its own backoff, from the initial
    // delay, beside the scout's turns.
    cb().on_connect_failed({Failure{Cause::connect_failed, "", "connection refused"}, {}});
    REQUIRE_FALSE(events.failures.empty());
    CHECK(events.failures.back().retry_in == Nanos(50ms));
    loop.advance(50ms);
    CHECK(connection->state() == ConnectionState::resolving);
  }
}

TEST_CASE_FIXTURE(Fixture,
                  "backoff: without a scout, and after an end that may be one backend's, a "
                  "connection retries on its own") {
  SUBCASE("no scout: an immediate shutdown backs off as any loss") {
    settings.scouted = false;
    connect();
    link->next_inspection = {Inspection::Verdict::went_away,
                             {Cause::immediate_shutdown, "57P01", "terminating"}};
  }
  SUBCASE("scouted: a fast shutdown's (or a terminate's) FATAL 57P01") {
    settings.scouted = true;
    connect();
    link->next_inspection = {Inspection::Verdict::went_away,
                             {Cause::server_shutdown, "57P01", "terminating"}};
  }
  cb().on_readable();
  CHECK(connection->state() == ConnectionState::backoff);
  CHECK(loop.armed_timers() == 1);
  loop.advance(50ms);  // the lowest of the first delay's 50-100 ms
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

// A hedge: a second attempt beside one still on its way (the target's RecoveryScout asks for it
// while the target is down); the first of the two to connect is the connection.

TEST_CASE_FIXTURE(Fixture,
                  "hedge: the second attempt connects first - it is the connection, the first is "
                  "closed and nothing failed is reported") {
  build();
  connection->start();
  cb().on_resolved();
  CHECK_FALSE(connection->hedge(250ms));  // the attempt is younger than that
  loop.advance(250ms);
  REQUIRE(connection->hedge(250ms));
  REQUIRE(links.size() == 2);
  ScriptedLink& first = *links[0];
  ScriptedLink& second = *links[1];
  CHECK(second.calls == std::vector<std::string>{"connect"});
  events.states.clear();
  second.cb.on_resolved();
  second.cb.on_connected({ServerInfo{7, 150020, "off"}, {}});
  CHECK(connection->state() == ConnectionState::healthy);
  CHECK(first.calls.back() == "close");
  CHECK(second.calls.back() == "watch_idle");
  CHECK(events.failures.empty());
  REQUIRE(events.healthy.size() == 1);
  CHECK(events.healthy[0].server.backend_pid == 7);
  CHECK(events.healthy[0].attempt == 1);  // one attempt, hedged
  CHECK(events.states == States{ConnectionState::healthy});
  CHECK(loop.armed_timers() == 0);  // no connect deadline left behind
  // The closed link's late reports change nothing; the idle watch is the winner's.
  first.cb.on_connect_failed({{Cause::closed, "", "gone"}, {}});
  first.cb.on_readable();
  CHECK(events.failures.empty());
  CHECK(events.wakeups == 0);
  second.next_inspection = {Inspection::Verdict::went_away, {Cause::server_shutdown, "57P01", ""}};
  second.cb.on_readable();
  REQUIRE(events.down.size() == 1);
  CHECK(second.calls.back() == "close");
}

TEST_CASE_FIXTURE(Fixture,
                  "hedge: the first attempt connects first - the hedge is closed and its late "
                  "reports are ignored") {
  build();
  connection->start();
  loop.advance(1s);
  REQUIRE(connection->hedge(250ms));
  ScriptedLink& first = *links[0];
  ScriptedLink& second = *links[1];
  first.cb.on_resolved();
  first.cb.on_connected({ServerInfo{5, 150020, "off"}, {}});
  CHECK(connection->state() == ConnectionState::healthy);
  CHECK(second.calls.back() == "close");
  second.cb.on_connected({ServerInfo{6, 150020, "off"}, {}});
  REQUIRE(events.healthy.size() == 1);
  CHECK(events.healthy[0].server.backend_pid == 5);
  CHECK_FALSE(connection->hedge(0ns));  // healthy: nothing to hedge
}

TEST_CASE_FIXTURE(Fixture,
                  "hedge: the first attempt fails while the hedge is on its way - nothing is "
                  "reported and the hedge goes on under its own connect deadline") {
  build();  // connect_timeout 5 s
  connection->start();
  loop.advance(2s);
  REQUIRE(connection->hedge(250ms));
  ScriptedLink& first = *links[0];
  ScriptedLink& second = *links[1];
  first.cb.on_connect_failed({{Cause::closed, "", "server closed the connection"}, {}});
  CHECK(connection->state() == ConnectionState::resolving);
  CHECK(first.calls.back() == "close");
  CHECK(events.failures.empty());
  loop.advance(3s);  // the first attempt's deadline: not the hedge's
  CHECK(events.failures.empty());
  loop.advance(2s - 1ns);
  CHECK(events.failures.empty());
  loop.advance(1ns);  // 5 s after the hedge began
  REQUIRE(events.failures.size() == 1);
  CHECK(events.failures[0].cause == Cause::connect_timeout);
  CHECK(second.calls.back() == "close");
  CHECK(connection->state() == ConnectionState::backoff);
}

TEST_CASE_FIXTURE(Fixture,
                  "hedge: the first attempt's deadline passes while the hedge is on its way - the "
                  "hedge goes on, and a hedge's own failure leaves the first attempt alone") {
  build();
  connection->start();
  loop.advance(4s);
  REQUIRE(connection->hedge(250ms));
  loop.advance(1s);  // the first attempt's 5 s
  CHECK(events.failures.empty());
  CHECK(links[0]->calls.back() == "close");
  CHECK(connection->state() == ConnectionState::resolving);
  // The hedge is the main attempt now; a new hedge beside it, which then fails.
  loop.advance(1s);
  REQUIRE(connection->hedge(250ms));
  links[0]->cb.on_connect_failed({{Cause::connect_failed, "", "refused"}, {}});
  CHECK(events.failures.empty());
  CHECK(links[0]->calls.back() == "close");
  links[1]->cb.on_resolved();
  links[1]->cb.on_connected({ServerInfo{9, 150020, "off"}, {}});
  CHECK(connection->state() == ConnectionState::healthy);
  CHECK(events.failures.empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "hedge: renewed - a hedge still on its way gives way to a fresh one, and only "
                  "the newest attempt's age counts") {
  build();
  connection->start();
  loop.advance(500ms);
  REQUIRE(connection->hedge(250ms));
  loop.advance(100ms);
  CHECK_FALSE(connection->hedge(250ms));  // the hedge is only 100 ms old
  loop.advance(400ms);
  REQUIRE(connection->hedge(250ms));
  // Slot 1 is reused: closed, then connecting again.
  REQUIRE(links.size() == 2);
  CHECK(links[1]->calls == std::vector<std::string>{"connect", "close", "connect"});
  CHECK(links[0]->calls == std::vector<std::string>{"connect"});
  connection->stop();
  CHECK(links[0]->calls.back() == "close");
  CHECK(links[1]->calls.back() == "close");
  CHECK(loop.armed_timers() == 0);
}

TEST_CASE_FIXTURE(Fixture, "hedge: nothing outside an attempt on its way") {
  build();
  CHECK_FALSE(connection->hedge(0ns));  // waiting, not started
  links.clear();
  connect();
  CHECK_FALSE(connection->hedge(0ns));  // healthy
  link->next_inspection = {Inspection::Verdict::went_away, {Cause::server_shutdown, "57P01", ""}};
  cb().on_readable();
  REQUIRE(connection->state() == ConnectionState::backoff);
  CHECK_FALSE(connection->hedge(0ns));
  CHECK(links.size() == 1);
}

TEST_CASE_FIXTURE(Fixture,
                  "hedge: only with a connect slot free at once, which it keeps while renewed and "
                  "gives back when it ends") {
  AttemptGate gate(loop, 2);
  build(&gate);
  connection->start();
  loop.advance(0ms);  // admitted
  REQUIRE(connection->state() == ConnectionState::resolving);
  CHECK(gate.running() == 1);
  const auto other = gate.try_enter();  // another connection's attempt takes the last slot
  REQUIRE(other.has_value());
  loop.advance(1s);
  CHECK_FALSE(connection->hedge(250ms));
  CHECK(links.size() == 1);
  gate.leave(*other);
  REQUIRE(connection->hedge(250ms));
  CHECK(gate.running() == 2);
  loop.advance(1s);
  REQUIRE(connection->hedge(250ms));  // renewed on the slot it holds
  CHECK(gate.running() == 2);
  links[1]->cb.on_connected({ServerInfo{3, 150020, "off"}, {}});
  CHECK(connection->state() == ConnectionState::healthy);
  CHECK(gate.running() == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
