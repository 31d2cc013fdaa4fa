// `stopped` is final, whatever reports it: the connection's life cycle is played through every
// transition and event kind, and for each event in turn, the connection is stopped from inside
// that very event (as an observer removing its target would). Afterwards no timer is armed, the
// link is asked for nothing but close(), and no event follows the transition to `stopped`.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "health/watched_connection.hpp"
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

/// Names every event; stops the connection inside the event numbered `stop_at`.
struct StoppingEvents final : ConnectionEvents {
  std::optional<std::size_t> stop_at;
  WatchedConnection* connection = nullptr;
  ScriptedLink** link = nullptr;
  std::vector<std::string> seen;
  bool stopped = false;
  std::vector<std::string> late;  ///< events after the transition to stopped
  std::size_t link_calls_at_stop = 0;

  void record(std::string what) {
    if (stopped) {
      late.push_back(what);
      return;
    }
    const bool reached_stop = what.ends_with("->stopped");
    seen.push_back(std::move(what));
    if (reached_stop) {
      stopped = true;
      return;
    }
    if (stop_at && seen.size() - 1 == *stop_at) {
      link_calls_at_stop = (*link)->calls.size();
      connection->stop();
    }
  }

  void on_state_change(const StateChangeEvent& e) override {
    record("state " + std::string(to_string(e.from)) + "->" + std::string(to_string(e.to)));
  }
  void on_healthy(const HealthyEvent&) override { record("healthy"); }
  void on_down(const DownEvent&) override { record("down"); }
  void on_reconnect_attempt(const ReconnectAttemptEvent&) override { record("reconnect_attempt"); }
  void on_connect_failed(const ConnectFailedEvent&) override { record("connect_failed"); }
  void on_probe(const ProbeEvent& e) override {
    record("probe " + std::string(to_string(e.result)));
  }
  void on_notification(const NotificationEvent&) override { record("notification"); }
  void on_notice(const NoticeEvent&) override { record("notice"); }
  void on_role_change(const RoleChangeEvent&) override { record("role_change"); }
  void on_wakeup(const ConnectionRef&) override {}  // metrics only: cannot reach an observer
};

struct Run {
  LifecycleSettings settings{5s, 2s, 1s, 100ms, 1s};
  FakeLoop loop;
  LowestRandom random;
  StoppingEvents events;
  ScriptedLink* link = nullptr;
  std::unique_ptr<WatchedConnection> connection;
  std::size_t armed_after_stop = 0;

  explicit Run(std::optional<std::size_t> stop_at) {
    connection =
        std::make_unique<WatchedConnection>(ConnectionRef{"primary", 0}, settings, loop, random,
                                            events, pgwd::testing::scripted_links(link));
    events.stop_at = stop_at;
    events.connection = connection.get();
    events.link = &link;
  }

  /// The whole life cycle, every transition and event kind. Keeps poking after a stop: all of
  /// it must then be ignored.
  void play() {
    const Arrivals notice{{}, {{"NOTICE", "00000", "hello"}}};
    const Arrivals notification{{{"jobs", "payload", 7}}, {}};
    const Failure auth{Cause::auth_failed, "28P01", "password authentication failed"};
    const auto connect = [&] {
      link->cb.on_resolved();
      link->cb.on_connected({ServerInfo{42, 150020, "h:5432", "off", "off"}, notice});
    };
    link->server = ServerInfo{42, 150020, "h:5432", "off", "off"};
    // After each step, with the connection stopped, nothing may be left armed: an expiry at the
    // end of the play would hide a timer armed after the stop (its callback ignores it).
    const auto step = [&](const auto& poke) {
      poke();
      if (events.stopped) armed_after_stop = std::max(armed_after_stop, loop.armed_timers());
    };

    step([&] { connection->start(); });  // waiting -> resolving
    step([&] { connect(); });            // notice, -> connecting -> healthy, healthy
    link->next_inspection = {Inspection::Verdict::explained, {}, notification};
    step([&] { link->cb.on_readable(); });  // -> inspecting, notification, -> healthy
    link->next_inspection = {Inspection::Verdict::unexplained, {}, {}};
    step([&] { link->cb.on_readable(); });  // -> inspecting -> probing
    link->server.in_hot_standby = "on";
    // notice, probe ok, role_change, -> healthy
    step([&] { link->cb.on_probe_done({std::nullopt, notice}); });
    step([&] { connection->heartbeat(); });  // the target's heartbeat: -> probing
    step([&] { loop.advance(2s); });  // probe timeout, -> down, down, -> backoff
    step([&] { loop.advance(1s); });  // -> waiting, reconnect_attempt, -> resolving
    // notice, -> backoff, connect_failed
    step([&] { link->cb.on_connect_failed({auth, notice}); });
    step([&] { loop.advance(1s); });  // -> waiting, reconnect_attempt, -> resolving
    step([&] { loop.advance(5s); });  // connect timeout: -> backoff, connect_failed
    step([&] { loop.advance(1s); });  // -> waiting, reconnect_attempt, -> resolving
    step([&] { connect(); });
    link->next_inspection = {Inspection::Verdict::went_away, auth, notification};
    // -> inspecting, notification, -> down, down, -> backoff
    step([&] { link->cb.on_readable(); });
    step([&] { loop.advance(1s); });
    step([&] { connect(); });
    link->next_inspection = {Inspection::Verdict::unexplained, {}, {}};
    step([&] { link->cb.on_readable(); });  // -> probing
    step([&] {
      link->cb.on_probe_done({Failure{Cause::probe_failed, "22012", "division by zero"}, {}});
    });
    step([&] { loop.advance(10s); });  // a few more retries: whatever is still armed fires
  }
};

}  // namespace

TEST_CASE("lifecycle: a stop from inside any event leaves nothing armed and nothing after it") {
  Run whole(std::nullopt);
  whole.play();
  const std::vector<std::string> script = whole.events.seen;
  // The play covers every kind of event and every transition of the life cycle.
  for (const char* kind : {"healthy",
                           "down",
                           "reconnect_attempt",
                           "connect_failed",
                           "probe ok",
                           "probe timeout",
                           "probe error",
                           "notification",
                           "notice",
                           "role_change",
                           "state waiting->resolving",
                           "state resolving->connecting",
                           "state connecting->healthy",
                           "state healthy->inspecting",
                           "state inspecting->healthy",
                           "state inspecting->probing",
                           "state inspecting->down",
                           "state healthy->probing",
                           "state probing->healthy",
                           "state probing->down",
                           "state down->backoff",
                           "state backoff->waiting",
                           "state resolving->backoff"}) {
    CAPTURE(kind);
    CHECK(std::find(script.begin(), script.end(), kind) != script.end());
  }
  REQUIRE(script.size() > 40);

  for (std::size_t k = 0; k < script.size(); ++k) {
    CAPTURE(k);
    CAPTURE(script[k]);
    Run run(k);
    run.play();
    CHECK(run.connection->state() == ConnectionState::stopped);
    CHECK(run.events.stopped);
    CHECK(run.events.late.empty());
    CHECK(run.armed_after_stop == 0);
    CHECK(run.loop.armed_timers() == 0);
    // After the stop, the link was only ever told to close.
    for (std::size_t i = run.events.link_calls_at_stop; i < run.link->calls.size(); ++i)
      CHECK(run.link->calls[i] == "close");
    // What it saw up to the stop is what the undisturbed run saw.
    REQUIRE(run.events.seen.size() >= k + 1);
    CHECK(std::equal(script.begin(), script.begin() + static_cast<std::ptrdiff_t>(k + 1),
                     run.events.seen.begin()));
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
