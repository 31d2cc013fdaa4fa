#include "health/attempt_gate.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
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
  for (int i = 0; i < 4; ++i) tickets.push_back(gate.enter("t", [&, i] { admitted.push_back(i); }));
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
    t = gate.enter("t", [&, &mine = t] {
      ++admitted;
      gate.leave(mine);  // e.g. PQconnectStartParams failed synchronously
    });
  loop.advance(0ms);
  CHECK(admitted == 3);
  CHECK(gate.running() == 0);
}

TEST_CASE("attempt gate: try_enter takes a free slot at once, never one an attempt waits for") {
  pgwd::testing::FakeLoop loop;
  AttemptGate gate(loop, 2);
  const auto first = gate.try_enter();
  REQUIRE(first.has_value());
  CHECK(gate.running() == 1);
  std::vector<int> admitted;
  const auto queued = gate.enter("t", [&] { admitted.push_back(1); });
  // A slot is free, but an attempt waits for it (admitted at the loop's next pass).
  CHECK_FALSE(gate.try_enter().has_value());
  loop.advance(0ms);
  CHECK(admitted == std::vector<int>{1});
  CHECK_FALSE(gate.try_enter().has_value());  // full
  gate.leave(*first);
  const auto second = gate.try_enter();
  REQUIRE(second.has_value());
  CHECK(*second != *first);
  gate.leave(*second);
  gate.leave(queued);
  CHECK(gate.running() == 0);
  CHECK(gate.waiting() == 0);
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
    tickets.push_back(gate.enter("t", [&, i] { admitted.push_back(i); }));
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

TEST_CASE("attempt gate: groups take turns - a few attempts never wait behind a storm") {
  // A restarted server's 600 connections queue at once, and a black-holed target's 3 and one
  // more target's 1 with them. Served in arrival order, those 4 would wait for the whole storm.
  pgwd::testing::FakeLoop loop;
  AttemptGate gate(loop, 2);
  std::vector<std::string> admitted;
  std::map<std::string, AttemptGate::Ticket> tickets;  // not yet left
  const auto queue = [&](const std::string& group, int count) {
    for (int i = 0; i < count; ++i) {
      const std::string who = group + std::to_string(i);
      tickets.emplace(who, gate.enter(group, [&, who] { admitted.push_back(who); }));
    }
  };
  const auto finish_running = [&] {  // the attempts admitted so far end; the next ones come in
    for (const std::string& who : admitted) {
      const auto it = tickets.find(who);
      if (it == tickets.end()) continue;
      gate.leave(it->second);
      tickets.erase(it);
    }
    loop.advance(0ms);
  };
  queue("storm", 600);
  queue("remote", 3);
  queue("other", 1);
  loop.advance(0ms);
  finish_running();
  finish_running();
  finish_running();
  // Each slot goes to the next group in name order after the last one served, wrapping round;
  // a group with nothing left waiting drops out of the turns.
  CHECK(admitted == std::vector<std::string>{"other0", "remote0", "storm0", "remote1", "storm1",
                                             "remote2", "storm2", "storm3"});
  CHECK(gate.running() == 2);
  CHECK(gate.waiting() == 600 - 4);
  gate.leave(tickets.at("storm599"));  // gives up waiting
  CHECK(gate.waiting() == 600 - 5);
}

TEST_CASE("attempt gate: within a group attempts are admitted in arrival order") {
  pgwd::testing::FakeLoop loop;
  AttemptGate gate(loop, 1);
  std::vector<std::string> admitted;
  std::map<std::string, AttemptGate::Ticket> tickets;
  const auto add = [&](const std::string& group, const std::string& who) {
    tickets.emplace(who, gate.enter(group, [&, who] { admitted.push_back(who); }));
  };
  add("b", "b0");
  loop.advance(0ms);  // b0 runs: b was served last
  add("b", "b1");
  add("a", "a0");
  add("b", "b2");
  for (int round = 0; round < 3; ++round) {
    gate.leave(tickets.at(admitted.back()));
    loop.advance(0ms);
  }
  // After b comes a (wrapping round); then b's line, oldest first.
  CHECK(admitted == std::vector<std::string>{"b0", "a0", "b1", "b2"});
  gate.leave(tickets.at("b2"));
  CHECK(gate.running() == 0);
  CHECK(gate.waiting() == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
