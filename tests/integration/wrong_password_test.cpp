#include <doctest/doctest.h>
#include <event2/event.h>

#include "support/backoff_checks.hpp"
#include "support/loop_gaps.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::WatchdogFixture;

TEST_CASE_FIXTURE(WatchdogFixture,
                  "wrong password: attempts fail with 28P01 and are spaced by the backoff while "
                  "the loop stays responsive") {
  const std::string wrong_password = "not-the-password-7f3a";
  TargetOptions o = target("badpw", 1);
  o.conninfo = cluster.conninfo_with_password("badpw", wrong_password);
  o.backoff_initial = 100ms;
  o.backoff_max = 400ms;
  watchdog->add_target(o);

  // Our own 10 ms ticker measures how late the loop runs while the watchdog retries.
  pgwd::testing::LoopTicker ticker(loop.base());

  // Eight failures: 100 + 200 + 6 x 400 ms of backoff at most, plus eight logins refused.
  constexpr std::size_t kFailures = 8;
  const auto& failures = observer.connect_failures;
  REQUIRE(loop.run_until([&] { return failures.size() >= kFailures; }, 30s));

  for (const auto& f : failures) {
    CHECK(f.event.cause == Cause::auth_failed);
    CHECK(f.event.sqlstate == "28P01");
    CHECK(f.event.message.find("password authentication failed") != std::string::npos);
  }
  pgwd::testing::check_backoff_schedule(observer, o.backoff_initial, o.backoff_max);
  CHECK(observer.healthy.empty());
  CHECK(metric("pgwatchdog_up", {{"target", "badpw"}}) == 0);
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "badpw"}, {"result", "failure"}}) ==
        static_cast<double>(failures.size() - 1));  // the first attempt is not a reconnect
  CHECK(metric("pgwatchdog_connect_failures_total",
               {{"target", "badpw"}, {"cause", "auth_failed"}}) ==
        static_cast<double>(failures.size()));
  MESSAGE(failures.size(), " failed attempts; the loop: ", ticker.gaps().summary());
  // The loop's busy stretches: the CPU time its thread spent within one tick gap (schedstat's
  // on-CPU time, so neither the time it waited for a CPU nor the time it slept counts: a loaded
  // machine stretches the gap, not this). That CPU is pgwatchdog's: the ticker's own is
  // microseconds, the rest is the watchdog's callbacks, here libpq's client side of SCRAM run
  // on the loop (a few ms per attempt), which a failed login must not turn into a long stall.
  CHECK(ticker.gaps().worst_on_cpu() < 100ms);

  // No secret leaks: not in the log (trace level), not in any event, not in the metrics.
  CHECK(log_text->str().find("password authentication failed") != std::string::npos);
  CHECK(log_text->str().find(wrong_password) == std::string::npos);
  for (const auto& f : failures) CHECK(f.event.message.find(wrong_password) == std::string::npos);
  CHECK(metrics->text().find(wrong_password) == std::string::npos);
}

TEST_CASE_FIXTURE(WatchdogFixture, "wrong password: one bad target does not disturb a good one") {
  TargetOptions bad = target("bad", 1);
  bad.conninfo = cluster.conninfo_with_password("bad", "wrong");
  watchdog->add_target(bad);
  watchdog->add_target(target("good", 2));
  REQUIRE(loop.run_until([&] { return all_healthy("good", 2); }, 10s));
  loop.run_for(500ms);
  CHECK(all_healthy("good", 2));
  CHECK(metric("pgwatchdog_up", {{"target", "good"}}) == 1);
  CHECK(metric("pgwatchdog_up", {{"target", "bad"}}) == 0);
  for (const auto& f : observer.connect_failures) CHECK(f.event.connection.target == "bad");
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "missing database and refused port are reported with their causes") {
  TargetOptions nodb = target("nodb", 1);
  nodb.conninfo += " dbname=does_not_exist";
  watchdog->add_target(nodb);
  TargetOptions refused = target("refused", 1);
  refused.conninfo = "host=127.0.0.1 port=1 user=x password=y connect_timeout=1";
  watchdog->add_target(refused);
  REQUIRE(loop.run_until(
      [&] {
        return std::count_if(observer.connect_failures.begin(), observer.connect_failures.end(),
                             [](const auto& f) { return f.event.connection.target == "nodb"; }) >=
                   1 &&
               std::count_if(
                   observer.connect_failures.begin(), observer.connect_failures.end(),
                   [](const auto& f) { return f.event.connection.target == "refused"; }) >= 1;
      },
      10s));
  for (const auto& f : observer.connect_failures) {
    if (f.event.connection.target == "nodb") {
      CHECK(f.event.cause == Cause::database_missing);
      CHECK(f.event.sqlstate == "3D000");
    } else {
      CHECK(f.event.cause == Cause::connect_failed);
      CHECK(f.event.message.find("Connection refused") != std::string::npos);
    }
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
