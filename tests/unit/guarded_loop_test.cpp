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
  GuardedLoop::Reports make(Nanos threshold) {
    return {[this](Nanos late) { lags.push_back(late); },
            [this](const SlowCallback& s) { slow.push_back(s); }, threshold};
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

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
