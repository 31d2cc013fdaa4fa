// The two Connectors (pg/connector.hpp) keep the same callback contract: an attempt that libpq
// refuses at once (inside PQconnectStartParams) is returned by start() on the watch loop and
// reported from the loop by the pool, never called back inside start(); a cancelled attempt
// never reports; and an answer already there is taken once by the host deadline's last look
// (finish_if_ready). No server needed: a hostaddr that is not an address fails before any
// socket exists, and an answer is a few scripted bytes (support/scripted_server.hpp). In the
// "thread" suite: CI runs it under TSan.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "event/guarded_loop.hpp"
#include "pg/connector_pool.hpp"
#include "pg/loop_connector.hpp"
#include "pgwd/adapters/libevent.hpp"
#include "support/eventually.hpp"
#include "support/scripted_server.hpp"
#include "support/silent_listener.hpp"
#include "support/test_loop.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;

namespace {

class NoNotes final : public ActivityNotes {
 public:
  void doing(CallbackPhase, const ConnectionRef*, const char*) noexcept override {}
};

struct Setup {
  pgwd::testing::TestLoop test_loop;
  LibeventLoop loop{test_loop.base()};
  GuardedLoop guarded{loop, {}};  // the watch loop's guard, for the LoopConnector
  NoNotes notes;
  std::unique_ptr<Connector> connector;
  ConnectionRef who{"unit", 0};
  explicit Setup(std::size_t threads) {
    if (threads == 0)
      connector = std::make_unique<LoopConnector>(guarded);
    else
      connector = std::make_unique<ConnectorPool>(loop, notes, threads);
  }
};

Conninfo not_an_address() {
  return Conninfo::parse("hostaddr=not-an-address port=5432 user=nobody dbname=nothing");
}

}  // namespace

TEST_SUITE("thread") {
  TEST_CASE("connector: a refusal at start is returned by start() or reported from the loop") {
    for (const std::size_t threads : {std::size_t{0}, std::size_t{2}}) {
      CAPTURE(threads);
      Setup s(threads);
      std::optional<AttemptOutcome> got;
      Connector::Started started = s.connector->start(
          not_an_address(), s.who, [&](AttemptOutcome outcome) { got = std::move(outcome); });
      CHECK_FALSE(got.has_value());  // never called back inside start()
      if (threads == 0) {
        REQUIRE(started.outcome.has_value());
        CHECK(started.attempt == nullptr);
        got = std::move(started.outcome);
      } else {
        CHECK_FALSE(started.outcome.has_value());
        REQUIRE(started.attempt != nullptr);
        REQUIRE(s.test_loop.run_until([&] { return got.has_value(); }, 10s));
      }
      CHECK(got->conn == nullptr);
      CHECK(got->failure.cause == Cause::connect_failed);
      CHECK(got->failure.message.find("not-an-address") != std::string::npos);
      started.attempt.reset();  // after delivery: nothing left to cancel
      s.test_loop.run_for(50ms);
    }
  }

  TEST_CASE("connector: on connector threads, an attempt destroyed before it reports never "
            "reports") {
    for (const std::size_t threads : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(threads);
      Setup s(threads);
      int reports = 0;
      // Destroyed at once: on a connector thread each one may not have begun yet, be polling,
      // or have its outcome already posted to the loop (which must then drop it).
      for (int i = 0; i < 20; ++i) {
        Connector::Started started =
            s.connector->start(not_an_address(), s.who, [&](AttemptOutcome) { ++reports; });
        CHECK(started.attempt != nullptr);
      }
      s.test_loop.run_for(200ms);
      CHECK(reports == 0);
    }
  }

  TEST_CASE(
      "connector: finish_if_ready takes an answer already there once - on the loop's "
      "socket or finished on a connector thread and not yet delivered") {
    for (const std::size_t threads : {std::size_t{0}, std::size_t{1}}) {
      CAPTURE(threads);
      Setup s(threads);
      pgwd::testing::SilentListener listener;
      int reports = 0;
      std::optional<AttemptOutcome> got;
      Connector::Started started = s.connector->start(
          Conninfo::parse("hostaddr=127.0.0.1 port=" + std::to_string(listener.port) +
                          " dbname=x user=y sslmode=disable gssencmode=disable"),
          s.who, [&](AttemptOutcome outcome) {
            ++reports;
            got = std::move(outcome);
          });
      REQUIRE(started.attempt != nullptr);
      const pgwd::testing::Accepted server(listener.fd);
      CHECK_FALSE(started.attempt->finish_if_ready());  // the server has said nothing yet
      server.send_all(pgwd::testing::starting_up_refusal());
      // The watch loop never runs here: its socket callback, or the connector thread's posted
      // delivery, has not happened; the last look takes the answer itself.
      REQUIRE(pgwd::testing::eventually([&] { return started.attempt->finish_if_ready(); }, 10s));
      CHECK(reports == 1);
      REQUIRE(got.has_value());
      CHECK(got->conn == nullptr);
      CHECK(got->failure.sqlstate == "57P03");
      started.attempt.reset();
      s.test_loop.run_for(50ms);  // a delivery still queued finds it taken
      CHECK(reports == 1);
    }
  }

  TEST_CASE("connector: a pool of 0 threads is refused") {
    pgwd::testing::TestLoop test_loop;
    LibeventLoop loop{test_loop.base()};
    NoNotes notes;
    CHECK_THROWS_AS(ConnectorPool(loop, notes, 0), std::invalid_argument);
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
