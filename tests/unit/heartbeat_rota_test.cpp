// A target's heartbeat rhythm on the fake loop: one round trip per target per period, rotating
// over the connections that can take it, spread across targets.
#include "health/heartbeat_rota.hpp"

#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "support/fake_loop.hpp"
#include "support/scripted_link.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::FakeLoop;
using pgwd::testing::LowestRandom;

namespace {

struct SeededRandom final : Random {
  std::mt19937_64 engine{42};
  std::uint64_t next() override { return engine(); }
};

struct Fixture {
  FakeLoop loop;
  LowestRandom random;
  std::vector<bool> idle{true, true, true};  ///< which connections can take a heartbeat
  std::vector<std::size_t> asked;
  std::vector<std::size_t> took;
  std::vector<MonotonicTime> at;
  std::function<void()> inside_beat;

  HeartbeatRota::Beat beat() {
    return [this](std::size_t i) {
      asked.push_back(i);
      if (!idle[i]) return false;
      took.push_back(i);
      at.push_back(loop.now());
      if (inside_beat) inside_beat();
      return true;
    };
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture,
                  "heartbeat rota: one round trip per period for the whole target - each "
                  "connection in turn") {
  HeartbeatRota rota(loop, random, 1s, 3, beat());
  CHECK(loop.armed_timers() == 0);
  rota.start();
  const MonotonicTime started = loop.now();
  loop.advance(10s);
  // LowestRandom: the first turn at once, then every 6/8 of a period.
  CHECK(took.size() == 1 + 13);
  CHECK(took == std::vector<std::size_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1});
  CHECK(asked == took);
  CHECK(at[0] == started);
  for (std::size_t k = 1; k < at.size(); ++k) CHECK(at[k] - at[k - 1] == Nanos(750ms));
}

TEST_CASE_FIXTURE(Fixture,
                  "heartbeat rota: a connection that cannot take it is skipped - the next one "
                  "takes the turn, and no turn sends two") {
  idle = {true, false, true};
  HeartbeatRota rota(loop, random, 1s, 3, beat());
  rota.start();
  loop.advance(2900ms);  // turns at 0, 750, 1500, 2250 ms
  CHECK(took == std::vector<std::size_t>{0, 2, 0, 2});
  CHECK(asked == std::vector<std::size_t>{0, 1, 2, 0, 1, 2});
}

TEST_CASE_FIXTURE(Fixture,
                  "heartbeat rota: with no connection idle nothing is sent - and the turns go on") {
  idle = {false, false, false};
  HeartbeatRota rota(loop, random, 1s, 3, beat());
  rota.start();
  loop.advance(2s);
  CHECK(took.empty());
  CHECK(asked.size() == 3 * 3);  // turns at 0, 750, 1500 ms asked each connection once
  CHECK(loop.armed_timers() == 1);
  idle[1] = true;
  loop.advance(500ms);  // the turn at 2250 ms
  CHECK(took == std::vector<std::size_t>{1});
}

TEST_CASE_FIXTURE(Fixture, "heartbeat rota: period zero arms nothing and sends nothing") {
  HeartbeatRota rota(loop, random, 0s, 3, beat());
  rota.start();
  CHECK(loop.armed_timers() == 0);
  loop.advance(24h);
  CHECK(asked.empty());
}

TEST_CASE_FIXTURE(Fixture, "heartbeat rota: stop() from inside a beat ends the turns") {
  HeartbeatRota* self = nullptr;
  inside_beat = [&] { self->stop(); };
  HeartbeatRota rota(loop, random, 1s, 3, beat());
  self = &rota;
  rota.start();
  loop.advance(10s);
  CHECK(took == std::vector<std::size_t>{0});
  CHECK(loop.armed_timers() == 0);
}

TEST_CASE(
    "heartbeat rota: 2,000 targets started together beat spread over the period - and no "
    "gap is longer than the period") {
  // 2,000, not 10,000: the fake loop scans every timer for each expiry.
  FakeLoop loop;
  SeededRandom random;
  constexpr std::size_t kTargets = 2'000;
  const Nanos period = 5s;
  std::vector<std::vector<MonotonicTime>> beats(kTargets);
  std::vector<std::unique_ptr<HeartbeatRota>> rotas;
  for (std::size_t t = 0; t < kTargets; ++t)
    rotas.push_back(std::make_unique<HeartbeatRota>(loop, random, period, 2, [&, t](std::size_t) {
      beats[t].push_back(loop.now());
      return true;
    }));
  const MonotonicTime started = loop.now();
  for (auto& rota : rotas) rota->start();
  loop.advance(20s);

  // First turns: uniform over the first period, 500 ms buckets each get about 200.
  std::vector<int> per_bucket(10, 0);
  for (const auto& b : beats) {
    REQUIRE(!b.empty());
    const Nanos offset = b[0] - started;
    REQUIRE(offset >= Nanos::zero());
    REQUIRE(offset <= period);
    ++per_bucket[std::min<std::size_t>(9, static_cast<std::size_t>(offset / 500ms))];
  }
  for (int count : per_bucket) {
    CHECK(count > 140);
    CHECK(count < 260);
  }
  // Gaps: within [6/8, 7/8] of the period, so a turn's answer is in before a period of silence.
  Nanos shortest = period;
  Nanos longest = Nanos::zero();
  for (const auto& b : beats)
    for (std::size_t k = 1; k < b.size(); ++k) {
      shortest = std::min(shortest, b[k] - b[k - 1]);
      longest = std::max(longest, b[k] - b[k - 1]);
    }
  CHECK(shortest >= period * 6 / 8);
  CHECK(longest <= period * 7 / 8);
  CHECK(longest - shortest > period / 16);  // jittered, not a fixed beat
}

TEST_CASE_FIXTURE(Fixture,
                  "heartbeat rota: beat_now sends one round trip at once by the next connection "
                  "that can take it, and leaves the rhythm where it was") {
  HeartbeatRota rota(loop, random, 1s, 3, beat());
  rota.start();
  loop.advance(0s);  // LowestRandom: the first turn at once, by connection 0
  REQUIRE(took == std::vector<std::size_t>{0});
  const MonotonicTime asked_at = loop.now() + 100ms;
  loop.advance(100ms);
  idle[1] = false;
  rota.beat_now();
  CHECK(took == std::vector<std::size_t>{0, 2});
  CHECK(at[1] == asked_at);
  // The next turn is still 6/8 of a period after the first, and goes on from connection 0.
  loop.advance(650ms - 1ns);
  CHECK(took.size() == 2);
  loop.advance(1ns);
  CHECK(took == std::vector<std::size_t>{0, 2, 0});
}

TEST_CASE_FIXTURE(Fixture,
                  "heartbeat rota: beat_now works with period 0 (no rhythm at all), and sends "
                  "nothing when no connection can take it") {
  HeartbeatRota rota(loop, random, 0s, 3, beat());
  rota.start();
  loop.advance(10s);
  CHECK(took.empty());
  rota.beat_now();
  CHECK(took == std::vector<std::size_t>{0});
  idle = {false, false, false};
  rota.beat_now();
  CHECK(took.size() == 1);
  CHECK(asked == std::vector<std::size_t>{0, 1, 2, 0});
  CHECK(loop.armed_timers() == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
