#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "support/watchdog_fixture.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::ShutdownMode;
using pgwd::testing::WatchdogFixture;

namespace {

// Restarts the server on a helper thread while the loop keeps running on this one, and checks
// that every connection notices, backs off while the server is away, and is back within a second
// of the server accepting connections again.
void restart_and_recover(WatchdogFixture& f, ShutdownMode mode) {
  constexpr std::size_t n = 4;
  f.watchdog->add_target(f.target("restart", n));
  REQUIRE(f.loop.run_until([&] { return f.all_healthy("restart", n); }, 10s));

  std::atomic<bool> restarted{false};
  std::atomic<std::chrono::steady_clock::time_point::rep> ready_at{0};
  std::thread restarter([&] {
    f.cluster.restart(mode);  // pg_ctl restart -w: returns once the server accepts connections
    ready_at = std::chrono::steady_clock::now().time_since_epoch().count();
    restarted = true;
  });
  const bool came_back = f.loop.run_until(
      [&] {
        return restarted && f.all_healthy("restart", n) && f.observer.healthy.size() >= 2 * n;
      },
      60s);
  restarter.join();
  REQUIRE(came_back);

  const std::chrono::steady_clock::time_point ready{
      std::chrono::steady_clock::duration(ready_at.load())};
  CHECK(f.observer.down.size() == n);
  std::chrono::steady_clock::time_point last_healthy{};
  for (std::size_t i = n; i < f.observer.healthy.size(); ++i)
    last_healthy = std::max(last_healthy, f.observer.healthy[i].at);
  MESSAGE("last connection healthy ",
          std::chrono::duration_cast<std::chrono::milliseconds>(last_healthy - ready).count(),
          " ms after pg_ctl reported the server ready");
  CHECK(last_healthy - ready < 1s);
  CHECK(f.metric("pgwatchdog_up", {{"target", "restart"}}) == 1);
  CHECK(f.metric("pgwatchdog_reconnects_total", {{"target", "restart"}, {"result", "success"}}) ==
        n);
}

}  // namespace

// A helper thread restarts the server while the loop runs: CI also runs these under
// ThreadSanitizer.
TEST_SUITE_BEGIN("thread");

TEST_CASE_FIXTURE(
    WatchdogFixture,
    "restart: pg_ctl restart -m fast - down with server_shutdown and back within a second") {
  restart_and_recover(*this, ShutdownMode::fast);
  for (const auto& d : observer.down) CHECK(d.event.cause == Cause::server_shutdown);
  // Attempts made while the server was away failed and were counted. Whether any was made
  // depends on the backoff's jitter against the restart's length, so none is asserted.
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "restart"}, {"result", "failure"}}) ==
        static_cast<double>(observer.connect_failures.size()));
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "restart: pg_ctl restart -m immediate - down at once and back within a second") {
  restart_and_recover(*this, ShutdownMode::immediate);
  // An immediate shutdown sends WARNING 57P01 to each client before the backends die.
  for (const auto& d : observer.down) CHECK(d.event.cause == Cause::server_shutdown);
}

TEST_SUITE_END();
