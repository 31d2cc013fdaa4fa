// GuardedLoop on a fake loop: deferred deletion, loop lag from the timers it wraps, slow
// callbacks named by the last activity note.
#include "event/guarded_loop.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "support/fake_loop.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::FakeLoop;

namespace {

struct Counted {
  explicit Counted(int& alive) : alive_(alive) { ++alive_; }
  ~Counted() { --alive_; }
  int& alive_;
};

struct Reports {
  std::vector<Nanos> lags;
  std::vector<SlowCallback> slow;
  GuardedLoop::Reports make(Nanos threshold, Nanos pass_budget = Nanos::zero()) {
    return {[this](Nanos late) { lags.push_back(late); },
            [this](const SlowCallback& s) { slow.push_back(s); }, threshold, pass_budget};
  }
};

/// `n` timers armed 1 ms from now, each adding its index to `ran` and taking `each` of the loop's
/// time when it runs.
std::vector<TimerPtr> busy_timers(GuardedLoop& loop, FakeLoop& fake, int n, Nanos each,
                                  std::vector<int>& ran) {
  std::vector<TimerPtr> timers;
  for (int i = 0; i < n; ++i) {
    timers.push_back(loop.make_timer([&ran, &fake, i, each] {
      ran.push_back(i);
      fake.stall(each);
    }));
    timers.back()->arm(1ms);
  }
  return timers;
}

/// Watches of sockets `first` to `last` (inclusive), each adding its fd to `ran` and taking
/// `each` of the loop's time when its socket is ready.
void busy_watches(GuardedLoop& loop, FakeLoop& fake, int first, int last, Nanos each,
                  GuardedLoop::SocketWork work, std::vector<int>& ran,
                  std::vector<SocketWatchPtr>& watches) {
  for (int fd = first; fd <= last; ++fd) {
    watches.push_back(loop.make_socket_watch(
        [&ran, &fake, fd, each](Readiness) {
          ran.push_back(fd);
          fake.stall(each);
        },
        work));
    watches.back()->watch(fd, Interest::read);
  }
}

/// A guarded loop with a 5 ms pass budget, and what its busy watches record.
struct BudgetedLoop {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop{fake, reports.make(10ms, 5ms)};
  std::vector<int> ran;
  std::vector<SocketWatchPtr> watches;
  void add_watches(int first, int last, Nanos each, GuardedLoop::SocketWork work) {
    busy_watches(loop, fake, first, last, each, work, ran, watches);
  }
};

}  // namespace

TEST_CASE("guarded loop: an object deleted inside a callback lives until the callback returns") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms));
  int alive = 0;
  auto object = std::make_unique<Counted>(alive);
  bool alive_after_delete = false;
  TimerPtr timer = loop.make_timer([&] {
    CHECK(loop.inside_callback());
    loop.delete_when_safe(std::move(object));
    alive_after_delete = alive == 1;  // still there: our code may be on the stack
  });
  timer->arm(1ms);
  fake.advance(1ms);
  CHECK(alive_after_delete);
  CHECK(alive == 0);  // gone once the callback returned
  CHECK_FALSE(loop.inside_callback());

  auto outside = std::make_unique<Counted>(alive);
  loop.delete_when_safe(std::move(outside));  // no callback running: at once
  CHECK(alive == 0);
}

TEST_CASE("guarded loop: a callback may delete the object that owns it, the timer included") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms));
  struct Owner {
    TimerPtr timer;
  };
  auto owner = std::make_unique<Owner>();
  int fired = 0;
  owner->timer = loop.make_timer([&] {
    ++fired;
    loop.delete_when_safe(std::move(owner));
  });
  owner->timer->arm(0ms);
  fake.advance(0ms);
  CHECK(fired == 1);
  CHECK(owner == nullptr);
}

TEST_CASE("guarded loop: every timer reports how late it fired - an idle loop reports nothing") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms));
  TimerPtr timer = loop.make_timer([] {});
  fake.advance(1h);
  CHECK(reports.lags.empty());  // nothing armed, nothing measured, no wake-up
  timer->arm(100ms);
  fake.stall(130ms);  // the loop was busy past the due time
  fake.advance(0ms);
  REQUIRE(reports.lags.size() == 1);
  CHECK(reports.lags[0] == 30ms);
}

TEST_CASE("guarded loop: a slow callback is reported once, with what it was doing") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms));
  const ConnectionRef who{"primary", 3};
  TimerPtr inner;
  TimerPtr outer = loop.make_timer([&] {
    loop.doing(CallbackPhase::connect_poll, &who, "authentication");
    fake.stall(25ms);  // SCRAM, say
  });
  TimerPtr quick = loop.make_timer([] {});
  outer->arm(0ms);
  quick->arm(1ms);
  fake.advance(1ms);
  REQUIRE(reports.slow.size() == 1);
  CHECK(reports.slow[0].took == 25ms);
  CHECK(reports.slow[0].phase == CallbackPhase::connect_poll);
  REQUIRE(reports.slow[0].connection != nullptr);
  CHECK(reports.slow[0].connection->index == 3);
  CHECK(std::string(reports.slow[0].detail) == "authentication");
}

TEST_CASE("guarded loop: posted tasks and socket callbacks run guarded - none after destruction") {
  FakeLoop fake;
  Reports reports;
  int ran = 0;
  {
    GuardedLoop loop(fake, reports.make(0ms));
    loop.post([&] { ++ran; });
    fake.run_posted();
    CHECK(ran == 1);
    REQUIRE(reports.slow.size() == 1);  // threshold 0: every callback counts
    CHECK(reports.slow[0].phase == CallbackPhase::post);
    SocketWatchPtr watch = loop.make_socket_watch([&](Readiness) { ++ran; });
    watch->watch(7, Interest::read);
    CHECK(fake.make_ready(7, {true, false}) == 1);
    CHECK(ran == 2);
    CHECK(reports.slow.back().phase == CallbackPhase::socket);
    loop.post([&] { ++ran; });  // still queued when the GuardedLoop goes
  }
  fake.run_posted();
  CHECK(ran == 2);
}

TEST_CASE_FIXTURE(BudgetedLoop,
                  "guarded loop: once the pass budget is spent, sockets wait for the next pass") {
  // Each callback takes 3 ms of the loop's time.
  add_watches(10, 13, 3ms, GuardedLoop::SocketWork::watch);
  // One pass: every socket ready. Two callbacks spend the budget; the others return at once.
  for (int fd = 10; fd < 14; ++fd) fake.make_ready(fd, {true, false});
  CHECK(ran == std::vector<int>{10, 11});
  CHECK(loop.declined() == 2);
  // The same pass goes on: still declined (level-triggered: the loop will report them again).
  fake.make_ready(12, {true, false});
  CHECK(ran.size() == 2);
  CHECK(loop.declined() == 3);
  // The loop polls again: the zero timer armed once a quarter of the budget was spent runs.
  fake.advance(0ms);
  fake.make_ready(12, {true, false});
  fake.make_ready(13, {true, false});
  CHECK(ran == std::vector<int>{10, 11, 12, 13});
  CHECK(loop.declined() == 3);
}

TEST_CASE_FIXTURE(
    BudgetedLoop,
    "guarded loop: connect steps run only while half the budget is left - the watches ready with "
    "them keep the other half") {
  // Sockets 40-43: connect steps of 2 ms each (SCRAM on the loop); 50-51: idle connections'
  // watches, 0.5 ms each.
  add_watches(40, 43, 2ms, GuardedLoop::SocketWork::connect_step);
  add_watches(50, 51, 500us, GuardedLoop::SocketWork::watch);
  // One pass, the steps first in the loop's order: two of them spend half the budget (4 ms of
  // 5), the other two wait; the watches behind them still run.
  for (const int fd : {40, 41, 42, 43, 50, 51}) fake.make_ready(fd, {true, false});
  CHECK(ran == std::vector<int>{40, 41, 50, 51});
  CHECK(loop.declined() == 2);
  // The next pass: a fresh budget for the steps left.
  fake.advance(0ms);
  for (const int fd : {42, 43}) fake.make_ready(fd, {true, false});
  CHECK(ran == std::vector<int>{40, 41, 50, 51, 42, 43});
  CHECK(loop.declined() == 2);
}

TEST_CASE("guarded loop: a declined activate_read is made again after the next poll, not before") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms, 5ms));
  int busy_ran = 0;
  int tls_ran = 0;
  SocketWatchPtr busy = loop.make_socket_watch([&](Readiness) {
    ++busy_ran;
    fake.stall(6ms);
  });
  busy->watch(20, Interest::read);
  SocketWatchPtr tls = loop.make_socket_watch([&](Readiness) { ++tls_ran; });
  tls->watch(21, Interest::read);
  fake.make_ready(20, {true, false});  // spends the budget
  tls->activate_read();                // bytes held by OpenSSL: the socket shows nothing
  fake.run_posted();                   // declined, and not made again within this pass
  CHECK(tls_ran == 0);
  CHECK(loop.declined() == 1);
  fake.advance(0ms);  // the marker: budget reset, the activation made again, and it runs
  CHECK(tls_ran == 1);
  CHECK(busy_ran == 1);
}

TEST_CASE("guarded loop: no pass budget, no declining") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms));
  int ran = 0;
  SocketWatchPtr watch = loop.make_socket_watch([&](Readiness) {
    ++ran;
    fake.stall(50ms);
  });
  watch->watch(30, Interest::read);
  for (int i = 0; i < 3; ++i) fake.make_ready(30, {true, false});
  CHECK(ran == 3);
  CHECK(loop.declined() == 0);
  CHECK(fake.armed_timers() == 0);
}

TEST_CASE("guarded loop: timers due together past half the budget wait for the marker, in order") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms, 5ms));
  std::vector<int> ran;
  const std::vector<TimerPtr> timers = busy_timers(loop, fake, 4, 2ms, ran);
  fake.advance(1ms);
  // 0 and 1 spend half the budget; 2 and 3 are queued, for the marker to run.
  CHECK(ran == std::vector<int>{0, 1});
  CHECK(loop.declined() == 2);
  CHECK(timers[2]->armed());
  fake.advance(10ms);  // the marker resets the budget, then 2 and 3 run
  CHECK(ran == std::vector<int>{0, 1, 2, 3});
  CHECK(loop.declined() == 2);
}

TEST_CASE("guarded loop: a declined timer disarmed, re-armed or destroyed before its turn") {
  FakeLoop fake;
  Reports reports;
  GuardedLoop loop(fake, reports.make(10ms, 5ms));
  std::vector<int> ran;
  std::vector<TimerPtr> timers = busy_timers(loop, fake, 5, 3ms, ran);
  fake.advance(1ms);  // 0 spends more than half the budget: 1 to 4 are declined
  REQUIRE(ran == std::vector<int>{0});
  timers[1]->disarm();
  timers[2]->arm(1h);
  timers[3].reset();
  CHECK_FALSE(timers[1]->armed());
  CHECK(timers[4]->armed());
  fake.advance(10ms);
  CHECK(ran == std::vector<int>{0, 4});  // 1 disarmed, 2 not due yet, 3 gone
  fake.advance(1h);
  CHECK(ran == std::vector<int>{0, 4, 2});
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
