// The callback contract of include/pgwd/watchdog.hpp, against a real cluster: from inside every
// kind of observer callback (every state transition included), a host may remove the target the
// event is about, remove another one and add a new one, or destroy the whole Watchdog. Afterwards
// no connection of a removed target is left in pg_stat_activity, and no event of it arrives.
// Linked with support/libpq_guard.cpp, so a PGconn used after PQfinish aborts the run (ASan
// cannot see that inside libpq); the ASan stage of CI runs all of it again.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgwd/watchdog.hpp"
#include "support/poll_deadline.hpp"
#include "support/recording_observer.hpp"
#include "support/standby_cluster.hpp"
#include "support/test_cluster.hpp"
#include "support/test_loop.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::at_most_every;
using pgwd::testing::StandbyCluster;
using pgwd::testing::TestCluster;
using pgwd::testing::TestLoop;
using pgwd::testing::WatchdogHarness;

namespace {

enum class Action {
  edit,     ///< remove another target, add a new one, remove the event's own target
  destroy,  ///< destroy the Watchdog
};

/// Which event triggers the action: the first one of `kind` about the target under test (for
/// "state", the first transition from -> to).
struct Trigger {
  std::string kind;
  ConnectionState from = ConnectionState::waiting;
  ConnectionState to = ConnectionState::waiting;
};

std::string describe(const Trigger& t) {
  if (t.kind != "state") return t.kind;
  return "state " + std::string(to_string(t.from)) + " -> " + std::string(to_string(t.to));
}

/// Acts on its Watchdog from inside the triggering callback, then counts every event about a
/// target that should be silent from then on.
class ActingObserver final : public Observer {
 public:
  ActingObserver(Trigger trigger, Action action, std::string own, std::string other,
                 std::function<TargetOptions(const std::string&)> make_target)
      : trigger_(std::move(trigger)),
        action_(action),
        own_(std::move(own)),
        other_(std::move(other)),
        make_target_(std::move(make_target)) {}

  std::unique_ptr<Watchdog>* watchdog = nullptr;
  bool fired = false;
  int late_events = 0;           ///< events of silenced targets after the action
  std::vector<std::string> log;  ///< what those were, for the failure message
  std::string fresh;             ///< the target added by the action
  int fresh_healthy = 0;

  void on_healthy(const HealthyEvent& e) override {
    if (e.connection.target == fresh) ++fresh_healthy;
    seen("healthy", e.connection);
  }
  void on_down(const DownEvent& e) override { seen("down", e.connection); }
  void on_reconnect_attempt(const ReconnectAttemptEvent& e) override {
    seen("reconnect_attempt", e.connection);
  }
  void on_connect_failed(const ConnectFailedEvent& e) override {
    seen("connect_failed", e.connection);
  }
  void on_probe(const ProbeEvent& e) override { seen("probe", e.connection); }
  void on_notification(const NotificationEvent& e) override { seen("notification", e.connection); }
  void on_notice(const NoticeEvent& e) override { seen("notice", e.connection); }
  void on_role_change(const RoleChangeEvent& e) override { seen("role_change", e.connection); }
  void on_state_change(const StateChangeEvent& e) override {
    seen("state", e.connection, e.from, e.to);
  }

 private:
  void seen(const std::string& kind, const ConnectionRef& who,
            std::optional<ConnectionState> from = {}, std::optional<ConnectionState> to = {}) {
    const bool silenced = action_ == Action::destroy || who.target == own_ || who.target == other_;
    if (fired) {
      if (silenced) {
        ++late_events;
        log.push_back(kind + " of " + who.target);
      }
      return;
    }
    if (who.target != own_ || kind != trigger_.kind) return;
    if (kind == "state" && (from != trigger_.from || to != trigger_.to)) return;
    fired = true;
    if (action_ == Action::destroy) {
      watchdog->reset();
      return;
    }
    Watchdog& w = **watchdog;
    CHECK(w.remove_target(other_));
    fresh = own_ + "_fresh";
    w.add_target(make_target_(fresh));
    CHECK(w.remove_target(own_));
    CHECK_FALSE(w.remove_target(own_));
  }

  Trigger trigger_;
  Action action_;
  std::string own_;
  std::string other_;
  std::function<TargetOptions(const std::string&)> make_target_;
};

/// How the target under test is set up, and what the test does to it once it is connected.
struct Scenario {
  std::function<void(TargetOptions&, const TestCluster&)> configure;
  std::function<void(const TestCluster&, const std::string& own)> provoke;  ///< may be empty
  /// The target's backends, where its server is not the cluster's (empty: the cluster's).
  std::function<std::vector<int>(const std::string& own)> backends;
};

TargetOptions plain_target(const TestCluster& cluster, const std::string& name) {
  TargetOptions o;
  o.name = name;
  o.conninfo = cluster.conninfo(name);  // application_name = name: pg_stat_activity finds it
  o.connections = 2;
  o.backoff_initial = 50ms;
  o.backoff_max = 200ms;
  return o;
}

void terminate(const TestCluster& cluster, const std::string& own) {
  cluster.terminate_backends(own);
}

const Scenario kPlain{[](TargetOptions&, const TestCluster&) {}, nullptr};
const Scenario kTerminated{[](TargetOptions&, const TestCluster&) {}, terminate};
const Scenario kNotified{
    [](TargetOptions& o, const TestCluster&) { o.listen_channels = {"jobs"}; },
    [](const TestCluster& c, const std::string&) { c.execute("NOTIFY jobs, 'hello'"); }};
const Scenario kHeartbeat{[](TargetOptions& o, const TestCluster&) { o.heartbeat = 100ms; },
                          nullptr};
const Scenario kNoticedProbe{[](TargetOptions& o, const TestCluster&) {
                               o.heartbeat = 100ms;
                               o.heartbeat_query = "DO $$ BEGIN RAISE NOTICE 'hello'; END $$";
                             },
                             nullptr};
const Scenario kFailingProbe{[](TargetOptions& o, const TestCluster&) {
                               o.heartbeat = 100ms;
                               o.heartbeat_query = "SELECT 1/0";
                             },
                             nullptr};
const Scenario kWrongPassword{[](TargetOptions& o, const TestCluster& c) {
                                o.conninfo = c.conninfo_with_password(o.name, "wrong");
                              },
                              nullptr};

struct Case {
  Trigger trigger;
  const Scenario* scenario;
};

std::vector<Case> cases() {
  using S = ConnectionState;
  const auto state = [](S from, S to) { return Trigger{"state", from, to}; };
  return {
      {{"healthy"}, &kPlain},
      {{"down"}, &kTerminated},
      {{"notification"}, &kNotified},
      {{"notice"}, &kNoticedProbe},
      {{"probe"}, &kHeartbeat},
      {{"connect_failed"}, &kWrongPassword},
      {{"reconnect_attempt"}, &kWrongPassword},
      {state(S::waiting, S::resolving), &kPlain},
      {state(S::resolving, S::connecting), &kPlain},
      {state(S::connecting, S::healthy), &kPlain},
      {state(S::healthy, S::inspecting), &kNotified},
      {state(S::inspecting, S::healthy), &kNotified},
      {state(S::inspecting, S::down), &kTerminated},
      {state(S::down, S::backoff), &kTerminated},
      {state(S::backoff, S::waiting), &kTerminated},
      {state(S::healthy, S::probing), &kHeartbeat},
      {state(S::probing, S::healthy), &kHeartbeat},
      {state(S::probing, S::down), &kFailingProbe},
      {state(S::connecting, S::backoff), &kWrongPassword},
  };
}

/// Runs one case on its own loop and Watchdog against `cluster`; names are unique per run.
void run_case(const TestCluster& cluster, const Case& c, Action action, int run) {
  const std::string own = "cb" + std::to_string(run);
  const std::string other = own + "_other";
  TestLoop loop;
  ActingObserver observer(c.trigger, action, own, other,
                          [&](const std::string& name) { return plain_target(cluster, name); });
  const auto log_text = std::make_shared<std::ostringstream>();  // the logger writes into it
  auto logger = WatchdogHarness::make_logger(log_text);
  auto watchdog = std::make_unique<Watchdog>(
      loop.base(), WatchdogOptions{.observer = &observer, .logger = logger});
  observer.watchdog = &watchdog;

  watchdog->add_target(plain_target(cluster, other));
  TargetOptions target = plain_target(cluster, own);
  c.scenario->configure(target, cluster);
  watchdog->add_target(target);

  bool provoked = !c.scenario->provoke;
  REQUIRE_MESSAGE(
      loop.run_until(
          [&] {
            if (!provoked && !observer.fired) {
              const auto states = watchdog->connection_states(own);
              if (std::count(states.begin(), states.end(), ConnectionState::healthy) == 2) {
                c.scenario->provoke(cluster, own);
                provoked = true;
              }
            }
            return observer.fired;
          },
          15s),
      "the trigger never came");

  // Removed targets: gone from the server, and silent.
  const auto own_backends = [&] {
    return c.scenario->backends ? c.scenario->backends(own) : cluster.backend_pids(own);
  };
  // A deadline for the server to reap the backends and for a connect, on a loaded machine.
  REQUIRE_MESSAGE(loop.run_until(
                      [&, on_server = at_most_every(100ms,
                                                    [&] {
                                                      return own_backends().empty() &&
                                                             cluster.backend_pids(other).empty();
                                                    })]() mutable {
                        return (action == Action::destroy || observer.fresh_healthy == 2) &&
                               on_server();
                      },
                      30s),
                  "connections of removed targets stayed open, or the added one never connected");
  loop.run_for(300ms);  // anything that would still come, comes now
  CHECK_MESSAGE(observer.late_events == 0,
                "events after the action: " << (observer.log.empty() ? "" : observer.log[0]));
  if (action == Action::destroy) {
    CHECK(watchdog == nullptr);
  } else {
    CHECK(watchdog->target_names() == std::vector<std::string>{observer.fresh});
    CHECK(pgwd::testing::metric_value(watchdog->metrics(), "pgwatchdog_up", {{"target", own}}) ==
          -1);
  }
}

}  // namespace

TEST_CASE("callbacks: removing and adding targets inside every kind of callback is safe") {
  TestCluster cluster;
  int run = 0;
  for (const Case& c : cases()) {
    CAPTURE(describe(c.trigger));
    run_case(cluster, c, Action::edit, ++run);
  }
}

TEST_CASE("callbacks: destroying the Watchdog inside every kind of callback is safe") {
  TestCluster cluster;
  int run = 0;
  for (const Case& c : cases()) {
    CAPTURE(describe(c.trigger));
    run_case(cluster, c, Action::destroy, ++run);
  }
}

TEST_CASE("callbacks: removing, adding and destroying inside on_role_change is safe") {
  for (const Action action : {Action::edit, Action::destroy}) {
    CAPTURE(action == Action::edit ? "edit" : "destroy");
    TestCluster primary;
    StandbyCluster standby(primary);
    const Scenario on_standby{[&](TargetOptions& o, const TestCluster&) {
                                o.conninfo = standby.conninfo(o.name);
                                o.heartbeat = 100ms;
                              },
                              [&](const TestCluster&, const std::string&) { standby.promote(); },
                              [&](const std::string& own) { return standby.backend_pids(own); }};
    // The other target and the added one are on the primary; the target under test on the
    // standby, which is promoted once it is connected.
    run_case(primary, Case{{"role_change"}, &on_standby}, action, 1);
  }
}

TEST_CASE("libpq guard: a PGconn used after PQfinish aborts the test binary") {
  // In a child, so that the abort is observed rather than suffered. The guard is what makes
  // the tests above able to fail on a use after free inside libpq.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGABRT, SIG_DFL);  // not doctest's crash handler: just die of it
    PGconn* conn = PQconnectStart("host=/nonexistent-dir");
    PQfinish(conn);
    ::close(2);  // keep the expected message out of the test output
    [[maybe_unused]] const volatile auto status = PQstatus(conn);  // the use after free
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
