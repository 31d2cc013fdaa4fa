// What the asio adapter costs: terminate-to-down latency of the same scenario on the libevent
// path and on AsioLoop, in one run against one cluster. Reported, not compared (speed belongs
// in bench/); each side must still meet the detection bound of the terminate tests.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "integration/asio_watchdog_harness.hpp"
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

/// Terminates the target's backends and runs its loop until every one is down: the slowest
/// connection's delay from the call, and from the call's return (the loop cannot run during it).
template <typename RunUntil>
std::pair<Clock::duration, Clock::duration> terminate_and_time(SideBySide& f,
                                                               const std::string& name,
                                                               RecordingObserver& observer,
                                                               std::size_t n, RunUntil run_until) {
  const std::size_t downs_before = observer.down.size();
  const auto called = Clock::now();
  REQUIRE(f.cluster.terminate_backends(name) == static_cast<int>(n));
  const auto returned = Clock::now();
  REQUIRE(run_until([&] { return observer.down.size() == downs_before + n; }, 5s));
  Clock::time_point slowest{};
  for (std::size_t i = downs_before; i < observer.down.size(); ++i) {
    CHECK(observer.down[i].event.cause == Cause::server_shutdown);
    slowest = std::max(slowest, observer.down[i].at);
  }
  return {slowest - called, slowest - returned};
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
  std::vector<Clock::duration> libevent_call, libevent_return, asio_call, asio_return;
  for (int round = 0; round < kRounds; ++round) {
    REQUIRE(run_libevent([&] { return libevent.all_healthy("on_libevent", n); }, 10s));
    REQUIRE(run_asio([&] { return asio.all_healthy("on_asio", n); }, 10s));
    const auto [lc, lr] =
        terminate_and_time(*this, "on_libevent", libevent.observer, n, run_libevent);
    const auto [ac, ar] = terminate_and_time(*this, "on_asio", asio.observer, n, run_asio);
    libevent_call.push_back(lc);
    libevent_return.push_back(lr);
    asio_call.push_back(ac);
    asio_return.push_back(ar);
    CHECK(lc < 500ms);
    CHECK(ac < 500ms);
  }
  const auto median = [](std::vector<Clock::duration> v) {
    std::sort(v.begin(), v.end());
    return micros(v[v.size() / 2]);
  };
  MESSAGE("terminate-to-down, slowest of ", n, " connections, median of ", kRounds,
          " rounds (us), from the pg_terminate_backend call / from its return: libevent ",
          median(libevent_call), " / ", median(libevent_return), ", asio ", median(asio_call),
          " / ", median(asio_return));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
