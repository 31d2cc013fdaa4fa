// A connect attempt's host deadline against an answer already on the socket. The loop may run the
// deadline's timer before the socket's callback (the pass budget declines either, and no loop
// promises their order): the deadline then takes a last look (ConnectAttempt::finish_if_ready)
// and counts what came in time. Replayed on the fake loop, which reports a socket only when the
// test says so, against a scripted server on loopback: a few bytes of the protocol, written
// before the deadline, that the loop was never told about.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "pgwd/watchdog.hpp"
#include "support/fake_loop.hpp"
#include "support/offline_targets.hpp"
#include "support/recording_observer.hpp"
#include "support/scripted_server.hpp"
#include "support/silent_listener.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::Accepted;
using pgwd::testing::FakeLoop;
using pgwd::testing::RecordingObserver;
using pgwd::testing::server_welcome;
using pgwd::testing::silent_logger;
using pgwd::testing::SilentListener;
using pgwd::testing::starting_up_refusal;

namespace {

/// A watchdog on the fake loop whose one target's attempt has begun (its socket connected to the
/// scripted server, accepted) and whose loop was never told the socket is ready.
struct Fixture {
  SilentListener listener;
  FakeLoop loop;
  RecordingObserver observer;
  pgwd::Watchdog w{loop, pgwd::WatchdogOptions{.observer = &observer, .logger = silent_logger()}};
  std::optional<Accepted> server;

  pgwd::TargetOptions target() const {
    pgwd::TargetOptions o;
    o.name = "deadline";
    o.conninfo = "hostaddr=127.0.0.1 port=" + std::to_string(listener.port) +
                 " dbname=x user=y sslmode=disable gssencmode=disable";
    o.connect_timeout = 5s;
    return o;
  }
  void start(const pgwd::TargetOptions& o) {
    w.add_target(o);
    loop.advance(0ns);  // the attempt starts: its socket connects, the loop waits to be told
    server.emplace(listener.fd);
  }
  /// The deadline's timer runs before any socket callback: the loop was told of none.
  void reach_deadline() { loop.advance(5s + 1ms); }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture,
                  "connect deadline: an answer on the socket before the deadline counts "
                  "- healthy and not connect_timeout") {
  start(target());
  server->send_all(server_welcome());  // in time, but the loop never reports the socket ready
  reach_deadline();
  CHECK(observer.connect_failures.empty());
  REQUIRE(observer.healthy.size() == 1);
  CHECK(observer.healthy[0].event.server.backend_pid == 4242);
}

TEST_CASE_FIXTURE(Fixture,
                  "connect deadline: nothing on the socket at the deadline - "
                  "connect_timeout") {
  start(target());  // accepted, never answered
  reach_deadline();
  CHECK(observer.healthy.empty());
  REQUIRE(observer.connect_failures.size() == 1);
  CHECK(observer.connect_failures[0].event.cause == pgwd::Cause::connect_timeout);
}

TEST_CASE_FIXTURE(Fixture,
                  "connect deadline: a server's refusal already on the socket is "
                  "reported as itself - 57P03 and not connect_timeout") {
  start(target());
  server->send_all(starting_up_refusal());
  reach_deadline();
  CHECK(observer.healthy.empty());
  REQUIRE(observer.connect_failures.size() == 1);
  CHECK(observer.connect_failures[0].event.sqlstate == "57P03");
  CHECK(observer.connect_failures[0].event.cause != pgwd::Cause::connect_timeout);
}

TEST_CASE_FIXTURE(Fixture,
                  "connect deadline: connected at the last look with a round trip still "
                  "to make (LISTEN) - connect_timeout: no time is left for it") {
  pgwd::TargetOptions o = target();
  o.listen_channels = {"jobs"};
  start(o);
  server->send_all(server_welcome());
  reach_deadline();
  CHECK(observer.healthy.empty());
  REQUIRE(observer.connect_failures.size() == 1);
  CHECK(observer.connect_failures[0].event.cause == pgwd::Cause::connect_timeout);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
