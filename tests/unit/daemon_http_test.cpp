// The daemon's HTTP pieces that need no network: the web config loader, bcrypt basic auth, the
// health verdicts and the status page.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <regex>
#include <thread>
#include <vector>

#include "daemon/basic_auth.hpp"
#include "daemon/config.hpp"
#include "daemon/health_state.hpp"
#include "daemon/http_routes.hpp"
#include "daemon/status_board.hpp"
#include "daemon/status_page.hpp"
#include "daemon/web_config.hpp"
#include "support/bcrypt_hash.hpp"
#include "support/thread_cpu_clock.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::daemon::ConfigError;
using pgwd::daemon::parse_web_config;

namespace {

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_web_config(yaml, "web.yml", "/nonexistent");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}


}  // namespace

TEST_CASE("web config: an empty file means plain HTTP without authentication") {
  const auto config = parse_web_config("", "web.yml", "/");
  CHECK_FALSE(config.tls.has_value());
  CHECK(config.basic_auth_users.empty());
}

TEST_CASE("web config: bad keys and values name the file and line and key") {
  CHECK(error_of("tls_server_config:\n  cert_file: a\n  bogus: 1\n") ==
        "web.yml:3: tls_server_config: unknown key 'bogus' (known keys: cert_file, key_file, "
        "client_auth_type, client_ca_file, min_version)");
  CHECK(error_of("nope: 1\n").starts_with("web.yml:1: unknown key 'nope'"));
  CHECK(error_of("http_server_config:\n  http2: false\n") ==
        "web.yml:1: http_server_config: not supported by pgwatchdog (an exporter-toolkit key)");
  CHECK(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS99\n") ==
        "web.yml:4: tls_server_config: min_version: unknown value 'TLS99' (TLS12, TLS13)");
  CHECK(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n")
            .starts_with("web.yml:4: tls_server_config: client_auth_type: unknown value 'Maybe'"));
  CHECK(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
                 "RequireAnyClientCert\n  client_ca_file: c\n")
            .find("'RequireAnyClientCert' is not supported") != std::string::npos);
  CHECK(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
                 "RequireAndVerifyClientCert\n")
            .find("needs client_ca_file") != std::string::npos);
  CHECK(error_of("tls_server_config:\n  key_file: b\n") ==
        "web.yml:1: tls_server_config: cert_file is required");
  CHECK(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n")
            .starts_with("tls_server_config: cert_file: cannot read '/nonexistent/a': No such file"));
  CHECK(error_of("tls_server_config: [\n").starts_with("web.yml:"));
}

TEST_CASE("web config: basic_auth_users takes bcrypt hashes and never echoes one") {
  const std::string hash = pgwd::testing::bcrypt_hash("secret", 5);
  const auto config = parse_web_config("basic_auth_users:\n  prometheus: " + hash + "\n", "w", "/");
  CHECK(config.basic_auth_users.at("prometheus") == hash);
  const std::string plain = error_of("basic_auth_users:\n  alice: hunter2hunter2\n");
  CHECK(plain.starts_with("web.yml:2: basic_auth_users: alice: not a bcrypt hash"));
  CHECK(plain.find("hunter2") == std::string::npos);
  CHECK(error_of("basic_auth_users:\n  'a:b': " + hash + "\n").find("contains ':'") !=
        std::string::npos);
  CHECK(error_of("basic_auth_users: []\n") ==
        "web.yml:1: basic_auth_users: expected a map of user: bcrypt hash");
}

TEST_CASE("basic auth: right password passes - wrong password and unknown user fail") {
  pgwd::daemon::BasicAuth auth({{"prometheus", pgwd::testing::bcrypt_hash("s3cret", 5)}});
  CHECK(auth.enabled());
  CHECK(auth.verify("prometheus", "s3cret"));
  CHECK(auth.verify("prometheus", "s3cret"));  // from the cache now
  CHECK_FALSE(auth.verify("prometheus", "s3cret "));
  CHECK_FALSE(auth.verify("prometheus", ""));
  CHECK_FALSE(auth.verify("nobody", "s3cret"));
  CHECK_FALSE(pgwd::daemon::BasicAuth({}).enabled());
}

TEST_CASE("basic auth: a cached success costs far less than a bcrypt check") {
  pgwd::daemon::BasicAuth auth({{"u", pgwd::testing::bcrypt_hash("p", 5)}});
  // The thread's CPU time: what the checks cost, not how long the scheduler kept it waiting.
  const auto first_start = pgwd::testing::thread_cpu_time();
  REQUIRE(auth.verify("u", "p"));
  const auto first = pgwd::testing::thread_cpu_time() - first_start;
  const auto again_start = pgwd::testing::thread_cpu_time();
  for (int i = 0; i < 10; ++i) REQUIRE(auth.verify("u", "p"));
  const auto ten_cached = pgwd::testing::thread_cpu_time() - again_start;
  MESSAGE("bcrypt (cost 5) ", first.count() / 1000, " us; 10 cached checks ",
          ten_cached.count() / 1000, " us");
  CHECK(ten_cached < first);
}

TEST_CASE("health: healthy while the loop beats - 503 after 5 s without a beat - ready needs all") {
  pgwd::daemon::HealthState health;
  pgwd::daemon::StatusBoard board(health);
  const auto handler = pgwd::daemon::daemon_routes(pgwd::make_series_store(), health, board);
  health.beat(std::chrono::steady_clock::now());
  CHECK(handler("/-/healthy").status == 200);
  health.beat(std::chrono::steady_clock::now() - 6s);
  const auto stalled = handler("/-/healthy");
  CHECK(stalled.status == 503);
  CHECK(stalled.body.starts_with("event loop stalled: no heartbeat for 6"));

  CHECK(handler("/-/ready").status == 503);
  health.set_config_loaded();
  health.set_listening();
  pgwd::TargetOptions a;
  a.name = "a";
  pgwd::TargetOptions b;
  b.name = "b";
  board.set_targets({a, b});
  CHECK(handler("/-/ready").body == "not ready: not every target has made its first attempt\n");
  board.on_connect_failed({{"a", 0}});
  CHECK(handler("/-/ready").status == 503);
  board.on_healthy({{"b", 0}});
  CHECK(handler("/-/ready").status == 200);
  pgwd::TargetOptions c;
  c.name = "c";
  board.set_targets({a, b, c});  // a reload: readiness is latched
  CHECK(handler("/-/ready").status == 200);
  CHECK(handler("/nope").status == 404);
  CHECK(handler("/metrics").status == 200);
}

TEST_CASE("status page: names are escaped - every target has a row - 1000 render quickly") {
  std::vector<pgwd::daemon::TargetStatus> targets;
  for (int i = 0; i < 1000; ++i) {
    pgwd::daemon::TargetStatus t;
    t.name = "db-" + std::to_string(i);
    t.connections = {pgwd::ConnectionState::healthy, pgwd::ConnectionState::healthy};
    t.attempted = true;
    targets.push_back(t);
  }
  targets[7].name = "<script>alert('x')</script>&\"";
  targets[7].connections = {pgwd::ConnectionState::backoff, pgwd::ConnectionState::backoff};
  targets[7].last_disconnect = pgwd::Cause::server_shutdown;
  targets[7].last_disconnect_sqlstate = "57P01";
  targets[7].last_disconnect_at = std::chrono::system_clock::now() - 90s;
  const auto now = std::chrono::steady_clock::now();
  targets[7].down_since = now - 75s;
  targets[8].in_hot_standby = "on";
  targets[9].connections = {pgwd::ConnectionState::backoff};
  targets[9].last_connect_failure = pgwd::Cause::auth_failed;
  targets[9].last_connect_failure_at = std::chrono::system_clock::now() - 3s;

  // Its CPU time: what rendering spends, whatever the machine's load.
  const auto start = pgwd::testing::thread_cpu_time();
  const std::string page =
      pgwd::daemon::render_status_page(targets, "0.0.0", std::chrono::system_clock::now(), now);
  const auto took = pgwd::testing::thread_cpu_time() - start;
  MESSAGE("1000 targets: ", page.size() / 1024, " KiB in ",
          std::chrono::duration_cast<std::chrono::microseconds>(took).count(), " us");
  CHECK(took < 500ms);
  CHECK(page.find("<script>") == std::string::npos);
  CHECK(page.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;") != std::string::npos);
  CHECK(page.find("<a href=\"/metrics\">") != std::string::npos);
  CHECK(page.find("http-equiv=\"refresh\"") != std::string::npos);
  CHECK(page.find("src=") == std::string::npos);  // nothing fetched from elsewhere
  const std::regex row("<tr><td class=\"name\">");
  CHECK(std::distance(std::sregex_iterator(page.begin(), page.end(), row), std::sregex_iterator()) ==
        1000);
  // The down target comes first, with its cause, outage and both connections' state.
  const auto first_row = page.find("<tr><td class=\"name\">");
  const std::string_view first_name = "<tr><td class=\"name\">&lt;script&gt;alert";
  CHECK(page.compare(first_row, first_name.size(), first_name) == 0);
  CHECK(page.find("<td class=\"down\">down</td><td>2 backoff</td><td>-</td><td>1m15s</td>"
                  "<td>server_shutdown (57P01) at ") != std::string::npos);
  CHECK(page.find("1m30s ago") != std::string::npos);
  CHECK(page.find("<td>standby</td>") != std::string::npos);
  CHECK(page.find("<td class=\"name\">db-9</td><td class=\"down\">down</td><td>1 backoff</td>") !=
        std::string::npos);
  CHECK(page.find("<td>auth_failed, 3s ago</td></tr>") != std::string::npos);
  CHECK(page.find("1000 targets: 998 up, 2 down") != std::string::npos);
}

// The HTTP threads read what the loop thread writes: CI runs these under ThreadSanitizer.
TEST_CASE("status board and basic auth: HTTP threads read while the loop writes" *
          doctest::test_suite("thread")) {
  pgwd::daemon::HealthState health;
  pgwd::daemon::StatusBoard board(health);
  pgwd::daemon::BasicAuth auth({{"u", pgwd::testing::bcrypt_hash("p", 4)}});
  const auto handler = pgwd::daemon::daemon_routes(pgwd::make_series_store(), health, board);
  pgwd::TargetOptions target;
  target.name = "t";
  target.connections = 2;
  board.set_targets({target});
  std::atomic<bool> stop{false};
  std::atomic<int> pages{0};
  std::vector<std::thread> readers;
  // The writer starts once every reader is in its loop: however the threads are scheduled,
  // their reads overlap the writes as much as the machine lets them.
  std::latch readers_started(3);
  for (int i = 0; i < 3; ++i)
    readers.emplace_back([&] {
      readers_started.count_down();
      while (!stop) {
        if (handler("/").status == 200 && handler("/-/ready").status != 0 &&
            handler("/-/healthy").status == 200 && handler("/targets/t/primary").status != 0 &&
            handler("/api/v1/targets").status == 200 && auth.verify("u", "p"))
          ++pages;
      }
    });
  readers_started.wait();
  // The loop's side: events and reloads, as the watchdog delivers them.
  for (int i = 0; i < 2000; ++i) {
    health.beat(std::chrono::steady_clock::now());
    board.on_state_change({{"t", i % 2}, pgwd::ConnectionState::connecting,
                           i % 3 ? pgwd::ConnectionState::healthy : pgwd::ConnectionState::backoff});
    board.on_down({{"t", 0}, pgwd::Cause::closed});
    board.on_healthy({{"t", 1}});
    board.on_role_change({{"t", 1}, i % 2 ? "on" : "off", i % 2 ? "off" : "on"});
    if (i % 500 == 0) board.set_targets({target});
  }
  // Wait (with a deadline, not a sleep) until the readers have been through the pages at least
  // a few times while the writer ran, then stop them.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pages < 10 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  stop = true;
  for (auto& reader : readers) reader.join();
  CHECK(pages >= 10);
  CHECK(health.every_target_attempted());
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
