#include <doctest/doctest.h>
#include <event2/event.h>

#include "event/libevent/event_ptr.hpp"
#include "support/watchdog_fixture.hpp"

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
  struct Ticker {
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration worst{0};
  } ticker;
  const EventPtr tick(event_new(
      loop.base(), -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) {
        auto* t = static_cast<Ticker*>(arg);
        const auto now = std::chrono::steady_clock::now();
        t->worst = std::max(t->worst, now - t->last);
        t->last = now;
      },
      &ticker));
  const timeval every = to_timeval(10ms);
  event_add(tick.get(), &every);

  const auto window = 3s;
  loop.run_for(window);

  const auto& failures = observer.connect_failures;
  // Delays drawn from [c/2, c] with c = 100, 200, 400, 400, ... ms: in 3 s at least
  // 3000 / 400 = 7 attempts and at most 1 + (3000 - 50 - 100 - 200) / 200 = 14.
  CHECK(failures.size() >= 7);
  CHECK(failures.size() <= 14);
  for (const auto& f : failures) {
    CHECK(f.event.cause == Cause::auth_failed);
    CHECK(f.event.sqlstate == "28P01");
    CHECK(f.event.message.find("password authentication failed") != std::string::npos);
  }
  // Each attempt started no earlier than the delay announced by the previous failure (the failure
  // is recorded a few microseconds after the retry timer was armed).
  for (std::size_t i = 0; i < observer.attempts.size() && i < failures.size(); ++i) {
    CHECK(observer.attempts[i].at - failures[i].at >= failures[i].event.retry_in - 1ms);
    CHECK(failures[i].event.retry_in >= 50ms);
    CHECK(failures[i].event.retry_in <= 400ms);
  }
  CHECK(observer.healthy.empty());
  CHECK(metric("pgwatchdog_up", {{"target", "badpw"}}) == 0);
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "badpw"}, {"result", "failure"}}) ==
        static_cast<double>(failures.size() - 1));  // the first attempt is not a reconnect
  CHECK(metric("pgwatchdog_connect_failures_total",
               {{"target", "badpw"}, {"cause", "auth_failed"}}) ==
        static_cast<double>(failures.size()));
  MESSAGE("attempts in ", window.count(), " s: ", failures.size(), ", worst tick gap: ",
          std::chrono::duration_cast<std::chrono::milliseconds>(ticker.worst).count(), " ms");
  CHECK(ticker.worst < 100ms);

  // No secret leaks: not in the log (trace level), not in any event, not in the metrics.
  CHECK(log_text->str().find("password authentication failed") != std::string::npos);
  CHECK(log_text->str().find(wrong_password) == std::string::npos);
  for (const auto& f : failures) CHECK(f.event.message.find(wrong_password) == std::string::npos);
  for (const auto& family : registry->Collect())
    for (const auto& m : family.metric)
      for (const auto& label : m.label)
        CHECK(label.value.find(wrong_password) == std::string::npos);
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
