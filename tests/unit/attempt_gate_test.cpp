#include "health/attempt_gate.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "support/fake_loop.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::AttemptGate;

TEST_CASE("attempt gate: at most limit attempts run at once and the others are admitted in order") {
  pgwd::testing::FakeLoop loop;
  AttemptGate gate(loop, 2);
  std::vector<int> admitted;
  std::vector<AttemptGate::Ticket> tickets;
  for (int i = 0; i < 4; ++i) tickets.push_back(gate.enter([&, i] { admitted.push_back(i); }));
  CHECK(admitted.empty());  // never from inside enter()
  loop.advance(0ms);
  CHECK(admitted == std::vector<int>{0, 1});
  CHECK(gate.running() == 2);
  CHECK(gate.waiting() == 2);
  gate.leave(tickets[1]);
  CHECK(admitted.size() == 2);  // never from inside leave()
  loop.advance(0ms);
  CHECK(admitted == std::vector<int>{0, 1, 2});
  gate.leave(tickets[3]);  // gives up waiting
  gate.leave(tickets[0]);
  gate.leave(tickets[2]);
  loop.advance(0ms);
  CHECK(admitted == std::vector<int>{0, 1, 2});
  CHECK(gate.running() == 0);
  CHECK(gate.waiting() == 0);
}

TEST_CASE("attempt gate: an attempt that ends at once lets the next one in during the same pass") {
  pgwd::testing::FakeLoop loop;
  AttemptGate gate(loop, 1);
  std::vector<AttemptGate::Ticket> tickets(3);
  int admitted = 0;
  for (auto& t : tickets)
    t = gate.enter([&, &mine = t] {
      ++admitted;
      gate.leave(mine);  // e.g. PQconnectStartParams failed synchronously
    });
  loop.advance(0ms);
  CHECK(admitted == 3);
  CHECK(gate.running() == 0);
}

TEST_CASE("attempt gate: giving up waiting costs no scan of the queue, and order is kept") {
  // Stopping a fleet that waits for its turn (40,000 connections to a closed port) leaves every
  // ticket, newest first here: a queue scanned per leave() makes this 2·10^10 comparisons
  // (minutes, far beyond the test's timeout); a keyed queue makes it milliseconds.
  constexpr int kWaiting = 200'000;
  pgwd::testing::FakeLoop loop;
  AttemptGate gate(loop, 1);
  std::vector<int> admitted;
  std::vector<AttemptGate::Ticket> tickets;
  tickets.reserve(kWaiting);
  for (int i = 0; i < kWaiting; ++i)
    tickets.push_back(gate.enter([&, i] { admitted.push_back(i); }));
  // Everyone but the first three and the last gives up, from the back.
  for (int i = kWaiting - 2; i >= 3; --i) gate.leave(tickets[static_cast<std::size_t>(i)]);
  CHECK(gate.waiting() == 4);
  for (int round = 0; round < 4; ++round) {
    loop.advance(0ms);
    REQUIRE(gate.running() == 1);
    gate.leave(tickets[static_cast<std::size_t>(admitted.back())]);
  }
  loop.advance(0ms);
  CHECK(admitted == std::vector<int>{0, 1, 2, kWaiting - 1});
  CHECK(gate.waiting() == 0);
  CHECK(gate.running() == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
