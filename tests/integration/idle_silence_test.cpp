// No traffic while healthy and idle (docs/design.md §1).
#include <doctest/doctest.h>
#include <event2/event.h>
#include <sys/resource.h>

#include <algorithm>

#include "event/libevent/event_ptr.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

TEST_CASE_FIXTURE(WatchdogFixture,
                  "idle: 20 idle connections for 10 s send the server zero statements - the "
                  "default heartbeat is one round trip per 5 s for the whole target") {
  const TargetOptions o = target("idle", 20);
  REQUIRE(o.heartbeat == 5s);  // the default
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("idle", 20); }, 10s));
  REQUIRE(cluster.backend_pids("idle").size() == 20);
  const double beats_before =
      metric("pgwatchdog_probes_total", {{"target", "idle"}, {"result", "ok"}});

  loop.run_for(10s);

  CHECK(cluster.count_statements("idle") == 0);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "idle"}}) == 0);
  // The first turn within 5 s, then turns 3.75-4.375 s apart (heartbeat_rota.cpp): 2 or 3 in
  // 10 s, for all 20 connections together (one each would be 40).
  const double beats =
      metric("pgwatchdog_probes_total", {{"target", "idle"}, {"result", "ok"}}) - beats_before;
  CHECK(beats >= 2);
  CHECK(beats <= 3);
  for (const auto& p : observer.probes) CHECK(p.event.heartbeat);
  // Connected all along: healthy, or one of them in the middle of its heartbeat (probing), which
  // on a loaded machine the server may still be answering when the 10 s end.
  CHECK(count_in("idle", ConnectionState::healthy) + count_in("idle", ConnectionState::probing) ==
        20);
  CHECK(count_in("idle", ConnectionState::probing) <= 1);
  CHECK(observer.down.empty());

  // The count above can fail: one OS-reported event on one connection (a NOTICE sent to it is
  // explained; a plain probe-worthy wake-up is not) shows up in both the counter and the log.
  cluster.execute("SELECT pg_notify('nobody_listens', 'x')");  // reaches no one: still silent
  loop.run_for(200ms);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "idle"}}) == 0);
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "idle: the statement count sees our statements - the LISTENs - and still no "
                  "heartbeat's") {
  // Positive control for the test above: the same server-side count does see our traffic.
  TargetOptions o = target("beating", 2);
  o.heartbeat = 100ms;
  o.listen_channels = {"control"};
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("beating", 2); }, 10s));
  REQUIRE(loop.run_until(
      [&] {
        return metric("pgwatchdog_probes_total", {{"target", "beating"}, {"result", "ok"}}) >= 10;
      },
      5s));
  // The server logs a statement before it answers it: both LISTENs are in the log by now.
  CHECK(cluster.count_statements("beating") == 2);
  CHECK(metric("pgwatchdog_wakeups_total", {{"target", "beating"}}) == 0);
}

namespace {

/// Runs the host's loop for `duration` with nothing of the test's on it but one timer that ends
/// it, and returns how often the loop's thread went to sleep and was woken meanwhile (voluntary
/// context switches): an idle loop sleeps once, in epoll_wait, until that timer. A major page
/// fault (code or data read back from disk, which a loaded machine's builds evict from the page
/// cache) also puts the thread to sleep and counts as a voluntary switch: those are the
/// machine's, not a wake-up of the loop, and are left out.
long wakeups_of_idle_loop(event_base* base, std::chrono::milliseconds duration) {
  const pgwd::EventPtr stop(evtimer_new(
      base,
      [](evutil_socket_t, short, void* b) { event_base_loopbreak(static_cast<event_base*>(b)); },
      base));
  const timeval after = pgwd::to_timeval(duration);
  evtimer_add(stop.get(), &after);
  rusage before{};
  getrusage(RUSAGE_THREAD, &before);
  event_base_dispatch(base);
  rusage after_run{};
  getrusage(RUSAGE_THREAD, &after_run);
  const long switches = after_run.ru_nvcsw - before.ru_nvcsw;
  const long major_faults = after_run.ru_majflt - before.ru_majflt;
  MESSAGE("voluntary context switches ", switches, ", of which major page faults ", major_faults);
  return std::max(0L, switches - major_faults);
}

/// 50 idle connections on an embedded watchdog with `options`; the loop's wake-ups over 3 s.
long idle_wakeups(pgwd::WatchdogOptions options, Duration heartbeat) {
  pgwd::testing::TestCluster cluster;
  pgwd::testing::TestLoop loop;
  const auto log_text = std::make_shared<std::ostringstream>();
  options.logger = pgwd::testing::WatchdogHarness::make_logger(log_text);
  Watchdog watchdog(loop.base(), options);
  TargetOptions o;
  o.name = "quiet";
  o.conninfo = cluster.conninfo("quiet");
  o.connections = 50;
  o.heartbeat = heartbeat;
  watchdog.add_target(o);
  REQUIRE(loop.run_until(
      [&] {
        const auto states = watchdog.connection_states("quiet");
        return std::count(states.begin(), states.end(), ConnectionState::healthy) == 50;
      },
      60s));  // 50 SCRAM logins on the loop: over 20 s under AddressSanitizer beside other work
  return wakeups_of_idle_loop(loop.base(), 3s);
}

}  // namespace

TEST_CASE("idle: an embedded watchdog with heartbeat 0 never wakes the host's loop") {
  const long wakeups = idle_wakeups({}, 0ms);
  MESSAGE("50 idle connections, heartbeat 0, 3 s: the loop's thread was woken ", wakeups,
          " time(s)");
  CHECK(wakeups <= 2);  // the test's own timer
}

TEST_CASE(
    "idle: with the default heartbeat the host's loop wakes for the target's round trip, "
    "not for each connection") {
  // At most one heartbeat falls in 3 s (3.75 s to 4.375 s apart): its timer, its answer, about 4
  // wake-ups with the test's own 2; one per connection would be 50 of each, over 100. The bound
  // tells those apart with room for what a loaded machine adds to a thread's voluntary context
  // switches besides major page faults (7 seen once in CI beside a build, before those were left
  // out), which is not pgwatchdog's.
  const long wakeups = idle_wakeups({}, TargetOptions{}.heartbeat);
  MESSAGE("50 idle connections, default heartbeat, 3 s: the loop's thread was woken ", wakeups,
          " time(s)");
  CHECK(wakeups <= 12);
}

TEST_CASE("idle: the wake-up count sees a ticker (loop_lag_interval) when one is asked for") {
  // Positive control for the tests above: a 100 ms ticker is 30 wake-ups in 3 s. It re-arms from
  // its own callback, so a loop kept waiting for a CPU ticks less often: half is required, still
  // above the other tests' bounds (2 and 12).
  const long wakeups = idle_wakeups({.loop_lag_interval = 100ms}, 0ms);
  MESSAGE("a 100 ms ticker, 3 s: the loop's thread was woken ", wakeups, " time(s)");
  CHECK(wakeups >= 15);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
