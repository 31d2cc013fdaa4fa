// A crash told apart from a planned stop, on a real server: the server says which (SQLSTATE
// 57P02, or FATAL 57P01 "unexpected postmaster exit"), and the cause says it too.
#include <doctest/doctest.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/sigquit_down.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

namespace {

void kill_9(int pid) {
  if (::kill(pid, SIGKILL) != 0)
    throw std::runtime_error("kill -9 " + std::to_string(pid) + ": " + std::strerror(errno));
}

// After a postmaster's kill -9 its children exit on their own when they notice; until the last
// one has, a new postmaster refuses the old shared memory. And until init reaps the killed
// postmaster (pg_ctl's child, orphaned), its zombie keeps the PID in postmaster.pid alive, so
// pg_ctl refuses to start ("lock file already exists"; seen when the start waited only for
// every child's exit on pidfds). No event says when someone else reaps a process: retried, not
// timed.
void start_again(pgwd::testing::TestCluster& cluster) {
  for (int attempt = 1;; ++attempt) {
    try {
      cluster.start();
      return;
    } catch (const std::exception&) {
      if (attempt == 50) throw;
      std::this_thread::sleep_for(200ms);
    }
  }
}

}  // namespace

TEST_CASE_FIXTURE(WatchdogFixture,
                  "crash: kill -9 of one backend - its own connection is closed, every sibling "
                  "is down with server_crash (WARNING 57P02) - and all come back") {
  constexpr std::size_t n = 3;
  watchdog->add_target(target("crashed", n));
  REQUIRE(loop.run_until([&] { return all_healthy("crashed", n); }, 10s));
  int victim = 0;
  for (const auto& h : observer.healthy)
    if (h.event.connection.index == 0) victim = h.event.server.backend_pid;
  REQUIRE(victim > 0);

  kill_9(victim);
  REQUIRE(loop.run_until([&] { return observer.down.size() == n; }, 10s));
  double warned = 0;  // siblings whose WARNING 57P02 came (the server's best effort)
  for (const auto& d : observer.down) {
    INFO("connection ", d.event.connection.index, ": ", to_string(d.event.cause), " ",
         d.event.sqlstate, " ", d.event.message);
    if (d.event.connection.index == 0) {
      CHECK(d.event.cause == Cause::closed);  // the kernel closed it: the backend said nothing
    } else if (pgwd::testing::check_sigquit_down(d.event, Cause::server_crash, "57P02")) {
      ++warned;
    }
  }
  CHECK(metric("pgwatchdog_disconnects_total",
               {{"target", "crashed"}, {"cause", "server_crash"}}) == warned);
  CHECK(metric("pgwatchdog_disconnects_total", {{"target", "crashed"}, {"cause", "closed"}}) ==
        static_cast<double>(n) - warned);
  CHECK(metric("pgwatchdog_disconnects_total",
               {{"target", "crashed"}, {"cause", "server_shutdown"}}) == 0);
  // The postmaster reinitialises on its own after a crash.
  REQUIRE(loop.run_until(
      [&] { return all_healthy("crashed", n) && observer.healthy.size() == 2 * n; }, 30s));
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "crash: kill -9 of the postmaster - every idle connection is down with "
                  "server_crash (FATAL 57P01 unexpected postmaster exit), not server_shutdown") {
  constexpr std::size_t n = 3;
  watchdog->add_target(target("orphaned", n));
  REQUIRE(loop.run_until([&] { return all_healthy("orphaned", n); }, 10s));

  kill_9(cluster.postmaster_pid());
  REQUIRE(loop.run_until([&] { return observer.down.size() == n; }, 10s));
  for (const auto& d : observer.down) {
    INFO("connection ", d.event.connection.index, ": ", d.event.message);
    CHECK(d.event.cause == Cause::server_crash);
    CHECK(d.event.sqlstate == "57P01");
    CHECK(d.event.message.find("unexpected postmaster exit") != std::string::npos);
  }
  CHECK(metric("pgwatchdog_disconnects_total",
               {{"target", "orphaned"}, {"cause", "server_crash"}}) == n);

  start_again(cluster);
  REQUIRE(loop.run_until(
      [&] { return all_healthy("orphaned", n) && observer.healthy.size() == 2 * n; }, 30s));
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "crash: a planned fast stop is still server_shutdown (FATAL 57P01) - the "
                  "control for the two above") {
  constexpr std::size_t n = 2;
  watchdog->add_target(target("planned", n));
  REQUIRE(loop.run_until([&] { return all_healthy("planned", n); }, 10s));
  cluster.stop(pgwd::testing::ShutdownMode::fast);  // blocks the loop: the sockets wait for it
  REQUIRE(loop.run_until([&] { return observer.down.size() == n; }, 10s));
  for (const auto& d : observer.down) {
    CHECK(d.event.cause == Cause::server_shutdown);
    CHECK(d.event.sqlstate == "57P01");
  }
  cluster.start();
  REQUIRE(loop.run_until([&] { return all_healthy("planned", n); }, 30s));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
