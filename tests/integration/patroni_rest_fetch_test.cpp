#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/patroni/curl_fetcher.hpp"
#include "pgwd/adapters/libevent.hpp"
#include "support/daemon_process.hpp"
#include "support/fake_patroni.hpp"
#include "support/sched_stat.hpp"
#include "support/silent_listener.hpp"
#include "support/test_loop.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::daemon;
using pgwd::testing::FakePatroni;
using pgwd::testing::SilentListener;
using pgwd::testing::TestLoop;

namespace {

struct Fixture {
  TestLoop test_loop;
  LibeventLoop loop{test_loop.base()};
  CurlFetcher fetcher{loop, "pgwatchdog-test"};
  FakePatroni patroni;
};

}  // namespace

TEST_CASE("curl fetcher: a GET is answered on the loop, never inside get()") {
  Fixture f;
  f.patroni.serve(R"({"members":[]})");
  std::optional<FetchResult> result;
  auto fetch = f.fetcher.get(f.patroni.url() + "/cluster", 2000ms,
                             [&](FetchResult r) { result = std::move(r); });
  CHECK_FALSE(result.has_value());
  REQUIRE(f.test_loop.run_until([&] { return result.has_value(); }, 10s));
  CHECK(result->error.empty());
  CHECK(result->status == 200);
  CHECK(result->body == R"({"members":[]})");
  CHECK(f.fetcher.in_flight() == 0);
}

TEST_CASE("curl fetcher: the callback may destroy its own GET and start another") {
  Fixture f;
  f.patroni.serve("first");
  std::unique_ptr<PendingFetch> fetch;
  std::vector<std::string> bodies;
  fetch = f.fetcher.get(f.patroni.url() + "/cluster", 2000ms, [&](FetchResult r) {
    bodies.push_back(r.body);
    f.patroni.serve("second");
    fetch = f.fetcher.get(f.patroni.url() + "/cluster", 2000ms, [&](FetchResult again) {
      bodies.push_back(again.body);
      fetch.reset();  // its own, from inside its callback
    });
  });
  REQUIRE(f.test_loop.run_until([&] { return bodies.size() == 2; }, 10s));
  CHECK(bodies == std::vector<std::string>{"first", "second"});
  CHECK(fetch == nullptr);
  CHECK(f.fetcher.in_flight() == 0);
}

TEST_CASE("curl fetcher: a callback may cancel another GET whose answer is in the same batch") {
  Fixture f;
  f.patroni.serve("x");
  std::unique_ptr<PendingFetch> a, b;
  int calls = 0;
  a = f.fetcher.get(f.patroni.url() + "/cluster", 2000ms, [&](FetchResult) {
    ++calls;
    b.reset();
  });
  b = f.fetcher.get(f.patroni.url() + "/cluster", 2000ms, [&](FetchResult) {
    ++calls;
    a.reset();
  });
  // Whichever finishes first cancels the other: exactly one callback ever runs.
  REQUIRE(f.test_loop.run_until([&] { return calls == 1 && f.fetcher.in_flight() == 0; }, 10s));
  f.test_loop.run_for(200ms);
  CHECK(calls == 1);
}

TEST_CASE("curl fetcher: a GET destroyed before its answer never calls back") {
  Fixture f;
  SilentListener silent;
  bool called = false;
  auto fetch = f.fetcher.get("http://127.0.0.1:" + std::to_string(silent.port) + "/cluster", 5000ms,
                             [&](FetchResult) { called = true; });
  f.test_loop.run_for(100ms);
  REQUIRE(f.fetcher.in_flight() == 1);
  fetch.reset();
  CHECK(f.fetcher.in_flight() == 0);
  f.test_loop.run_for(200ms);
  CHECK_FALSE(called);
  CHECK(f.fetcher.watched_sockets() == 0);
}

TEST_CASE("curl fetcher: refused, silent and oversized answers are errors that say so") {
  Fixture f;
  std::optional<FetchResult> result;
  const auto wait = [&] { return f.test_loop.run_until([&] { return result.has_value(); }, 10s); };

  SUBCASE("nobody listens") {
    const int port = pgwd::testing::free_tcp_port();
    auto fetch = f.fetcher.get("http://127.0.0.1:" + std::to_string(port) + "/cluster", 2000ms,
                               [&](FetchResult r) { result = std::move(r); });
    REQUIRE(wait());
    // libcurl 7.88: "Failed to connect to 127.0.0.1 port N after 0 ms: Couldn't connect to
    // server"; later versions say "Connection refused".
    CHECK_MESSAGE(
        result->error.find("Failed to connect to 127.0.0.1 port " + std::to_string(port)) == 0,
        result->error);
  }
  SUBCASE("a server that never answers, within the timeout and not much later") {
    SilentListener silent;
    // The timeout is pgwatchdog's own deadline: never before it, and not much after. The upper
    // bound is on wall time, so the time this thread (which runs the loop and with it libcurl)
    // waited for a CPU is the machine's, measured and taken out.
    const pgwd::testing::CpuWaitSince loop_wait;
    const auto start = std::chrono::steady_clock::now();
    auto fetch = f.fetcher.get("http://127.0.0.1:" + std::to_string(silent.port) + "/cluster",
                               300ms, [&](FetchResult r) { result = std::move(r); });
    REQUIRE(wait());
    const auto took = std::chrono::steady_clock::now() - start;
    const auto waited = loop_wait.waited();
    CHECK(result->error == "no answer within 300 ms");
    MESSAGE("a 300 ms timeout reported after ",
            std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), " ms, ",
            std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
            " ms of it waiting for a CPU");
    CHECK(took >= 300ms);
    CHECK(took - waited < 3s);
  }
  SUBCASE("an answer larger than 1 MiB") {
    f.patroni.serve(std::string(kMaxAnswerBytes + 1, 'x'));
    auto fetch = f.fetcher.get(f.patroni.url() + "/cluster", 5000ms,
                               [&](FetchResult r) { result = std::move(r); });
    REQUIRE(wait());
    CHECK(result->error == "the answer is larger than 1 MiB");
  }
  SUBCASE("a status other than 200 is an answer, with its status") {
    f.patroni.serve(R"({"state":"stopped"})", 503);
    auto fetch = f.fetcher.get(f.patroni.url() + "/cluster", 2000ms,
                               [&](FetchResult r) { result = std::move(r); });
    REQUIRE(wait());
    CHECK(result->error.empty());
    CHECK(result->status == 503);
  }
  SUBCASE("a name that does not resolve, without blocking the loop") {
    auto fetch = f.fetcher.get("http://pgwd-no-such-host.invalid:8008/cluster", 5000ms,
                               [&](FetchResult r) { result = std::move(r); });
    REQUIRE(wait());
    CHECK(result->error.find("resolve") != std::string::npos);
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
