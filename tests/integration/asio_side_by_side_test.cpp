// What the asio adapter costs: terminate-to-down latency of the same scenario on the libevent
// path and on AsioLoop, in one run against one cluster. Reported, not compared (speed belongs
// in bench/); each side must still meet the detection bound of the terminate tests.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "integration/asio_watchdog_harness.hpp"
#include "support/loop_gaps.hpp"
#include "support/process_exits.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::AsioWatchdogHarness;
using pgwd::testing::ClusterHolder;
using pgwd::testing::RecordingObserver;
using pgwd::testing::WatchdogHarness;

namespace {

using Clock = std::chrono::steady_clock;

struct SideBySide : ClusterHolder {
  SideBySide() : ClusterHolder({}) {}
  WatchdogHarness libevent;  // after the cluster: destroyed before it
  AsioWatchdogHarness asio;

  TargetOptions target(const std::string& name, int connections) const {
    return pgwd::testing::test_target(cluster, name, connections);
  }
};

/// How late the slowest of a round's down events came: from the pg_terminate_backend call, from
/// its return (the loop cannot run during it), and the one asserted, pgwatchdog's own: from each
/// backend's exit (its FATAL is on the socket by then) less the time this thread, which runs the
/// loop, waited for a CPU meanwhile (terminate_backend_test.cpp, support/process_exits.hpp).
struct TerminateTimes {
  Clock::duration from_call{};
  Clock::duration from_return{};
  Clock::duration after_exit_less_wait{};
};

/// Terminates the target's backends and runs its loop until every one is down.
template <typename RunUntil>
TerminateTimes terminate_and_time(SideBySide& f, const std::string& name,
                                  RecordingObserver& observer, std::size_t n, RunUntil run_until) {
  const std::size_t downs_before = observer.down.size();
  pgwd::testing::ProcessExits exits(f.cluster.backend_pids(name));
  const pgwd::testing::CpuWaitSince loop_wait;
  const auto called = Clock::now();
  REQUIRE(f.cluster.terminate_backends(name) == static_cast<int>(n));
  const auto returned = Clock::now();
  REQUIRE(run_until([&] { return observer.down.size() == downs_before + n; }, 5s));
  const auto waited = loop_wait.waited();
  REQUIRE(exits.wait(5s));
  Clock::time_point slowest{};
  Clock::duration after_exit{};
  for (std::size_t i = downs_before; i < observer.down.size(); ++i) {
    const auto& d = observer.down[i];
    CHECK(d.event.cause == Cause::server_shutdown);
    slowest = std::max(slowest, d.at);
    const auto exited =
        exits.exited_at(pgwd::testing::backend_pid_before(observer, d.event.connection, d.at));
    REQUIRE(exited.has_value());
    after_exit = std::max(after_exit, d.at - *exited);
  }
  return {slowest - called, slowest - returned, after_exit - waited};
}

long long micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

TEST_CASE_FIXTURE(SideBySide,
                  "asio vs libevent: terminate-to-down latency of the same scenario in one run") {
  constexpr std::size_t n = 5;
  constexpr int kRounds = 3;
  libevent.watchdog->add_target(target("on_libevent", n));
  asio.watchdog->add_target(target("on_asio", n));
  const auto run_libevent = [&](const std::function<bool()>& done, std::chrono::milliseconds t) {
    return libevent.loop.run_until(done, t);
  };
  const auto run_asio = [&](const std::function<bool()>& done, std::chrono::milliseconds t) {
    return asio.run_until(done, t);
  };
  std::vector<Clock::duration> libevent_call, libevent_return, libevent_own, asio_call, asio_return,
      asio_own;
  for (int round = 0; round < kRounds; ++round) {
    REQUIRE(run_libevent([&] { return libevent.all_healthy("on_libevent", n); }, 10s));
    REQUIRE(run_asio([&] { return asio.all_healthy("on_asio", n); }, 10s));
    const auto l = terminate_and_time(*this, "on_libevent", libevent.observer, n, run_libevent);
    const auto a = terminate_and_time(*this, "on_asio", asio.observer, n, run_asio);
    libevent_call.push_back(l.from_call);
    libevent_return.push_back(l.from_return);
    libevent_own.push_back(l.after_exit_less_wait);
    asio_call.push_back(a.from_call);
    asio_return.push_back(a.from_return);
    asio_own.push_back(a.after_exit_less_wait);
    CHECK(l.after_exit_less_wait < pgwd::testing::kDownAfterBackendExit);
    CHECK(a.after_exit_less_wait < pgwd::testing::kDownAfterBackendExit);
  }
  const auto median = [](std::vector<Clock::duration> v) {
    std::sort(v.begin(), v.end());
    return micros(v[v.size() / 2]);
  };
  MESSAGE("terminate-to-down, slowest of ", n, " connections, median of ", kRounds,
          " rounds (us), from the pg_terminate_backend call / from its return / from the "
          "backend's exit less the loop's wait for a CPU: libevent ",
          median(libevent_call), " / ", median(libevent_return), " / ", median(libevent_own),
          ", asio ", median(asio_call), " / ", median(asio_return), " / ", median(asio_own));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
