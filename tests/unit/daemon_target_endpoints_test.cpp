// The endpoints a proxy routes by (docs/daemon.md "Target endpoints"): the path parser, the
// percent-decoding, the checks' verdicts and words, and the JSON API, from StatusBoard events as
// the watchdog delivers them.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "daemon/health_state.hpp"
#include "daemon/http_routes.hpp"
#include "daemon/http_server.hpp"
#include "text/json.hpp"
#include "daemon/status_board.hpp"
#include "daemon/target_endpoints.hpp"
#include "support/thread_cpu_clock.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::ConnectionState;
using pgwd::daemon::parse_target_path;
using pgwd::daemon::percent_decoded;
using pgwd::daemon::TargetCheck;

namespace {

struct Board {
  pgwd::daemon::HealthState health;
  pgwd::daemon::StatusBoard board{health};
  pgwd::daemon::HttpHandler handler =
      pgwd::daemon::daemon_routes(pgwd::make_series_store(), health, board);

  explicit Board(std::vector<std::string> names, int connections = 1) {
    std::vector<pgwd::TargetOptions> targets;
    for (auto& name : names) {
      pgwd::TargetOptions options;
      options.name = std::move(name);
      options.connections = connections;
      targets.push_back(options);
    }
    board.set_targets(targets);
  }
  void state(const std::string& target, int index, ConnectionState from, ConnectionState to) {
    board.on_state_change({{target, index}, from, to});
  }
  // A connection connects, as WatchedConnection tells it: the state first, then on_healthy.
  void connect(const std::string& target, int index, const std::string& in_hot_standby) {
    state(target, index, ConnectionState::connecting, ConnectionState::healthy);
    pgwd::HealthyEvent healthy;
    healthy.connection = {target, index};
    healthy.server.in_hot_standby = in_hot_standby;
    board.on_healthy(healthy);
  }
  void lose(const std::string& target, int index, pgwd::Cause cause, const std::string& sqlstate) {
    state(target, index, ConnectionState::healthy, ConnectionState::down);
    board.on_down({{target, index}, cause, sqlstate, "bye"});
    state(target, index, ConnectionState::down, ConnectionState::backoff);
  }
};

}  // namespace

TEST_CASE("target endpoints: the check is the path's last segment and the name all before it") {
  auto path = parse_target_path("/targets/db1/primary");
  REQUIRE(path);
  CHECK(path->name == "db1");
  CHECK(path->check == TargetCheck::primary);
  CHECK(parse_target_path("/targets/db1/replica")->check == TargetCheck::replica);
  CHECK(parse_target_path("/targets/db1/up")->check == TargetCheck::up);
  path = parse_target_path("/targets/eu/db 1/up");  // a name holding '/' and ' '
  REQUIRE(path);
  CHECK(path->name == "eu/db 1");
  CHECK_FALSE(parse_target_path("/targets//up"));
  CHECK_FALSE(parse_target_path("/targets/up"));
  CHECK_FALSE(parse_target_path("/targets/db1/leader"));
  CHECK_FALSE(parse_target_path("/targets/db1/primary/"));
  CHECK_FALSE(parse_target_path("/target/db1/up"));
  CHECK(pgwd::daemon::is_health_check("/targets/db1/up"));
  CHECK(pgwd::daemon::is_health_check("/-/ready"));
  CHECK_FALSE(pgwd::daemon::is_health_check("/api/v1/targets"));
  CHECK_FALSE(pgwd::daemon::is_health_check("/metrics"));
  CHECK_FALSE(pgwd::daemon::is_health_check("/"));
}

TEST_CASE("target endpoints: a path is percent-decoded once - a bad escape or %00 is refused") {
  CHECK(percent_decoded("/targets/db%201/up") == "/targets/db 1/up");
  CHECK(percent_decoded("/targets/eu%2Fdb%2fx/up") == "/targets/eu/db/x/up");
  CHECK(percent_decoded("/targets/50%2525/up") == "/targets/50%25/up");  // once, not twice
  CHECK(percent_decoded("/targets/caf%C3%A9/up") == "/targets/caf\xC3\xA9/up");
  CHECK(percent_decoded("/targets/a+b/up") == "/targets/a+b/up");
  CHECK(percent_decoded("/metrics") == "/metrics");
  CHECK_FALSE(percent_decoded("/targets/50%/up"));
  CHECK_FALSE(percent_decoded("/targets/x%4"));
  CHECK_FALSE(percent_decoded("/targets/x%zz/up"));
  CHECK_FALSE(percent_decoded("/targets/x%00/up"));
}

TEST_CASE("target endpoints: up primary and replica follow the target's state and role") {
  Board b({"db", "other"});
  const auto get = [&](const std::string& path) { return b.handler(path); };

  // Before the first attempt ends: pending, for every check.
  auto reply = get("/targets/db/up");
  CHECK(reply.status == 503);
  CHECK(reply.body == "pending: the first connect attempt has not ended\n");
  CHECK(get("/targets/db/primary").body ==
        "not primary: pending: the first connect attempt has not ended\n");

  // Up, the role not reported yet (the state comes before on_healthy): no role check passes.
  b.state("db", 0, ConnectionState::connecting, ConnectionState::healthy);
  CHECK(get("/targets/db/up").status == 200);
  CHECK(get("/targets/db/up").body == "up: 1 healthy\n");
  reply = get("/targets/db/primary");
  CHECK(reply.status == 503);
  CHECK(reply.body.starts_with("not primary: role unknown: the server has not reported"));
  CHECK(get("/targets/db/replica").status == 503);

  pgwd::HealthyEvent healthy;
  healthy.connection = {"db", 0};
  healthy.server.in_hot_standby = "off";
  b.board.on_healthy(healthy);
  reply = get("/targets/db/primary");
  CHECK(reply.status == 200);
  CHECK(reply.content_type == "text/plain; charset=utf-8");
  CHECK(reply.body == "primary: up (1 healthy), in_hot_standby=off\n");
  reply = get("/targets/db/replica");
  CHECK(reply.status == 503);
  CHECK(reply.body == "not a replica: the server is the primary (in_hot_standby=off)\n");

  // Demoted (the heartbeat's ParameterStatus): the checks turn with it.
  b.board.on_role_change({{"db", 0}, "on", "off"});
  CHECK(get("/targets/db/primary").status == 503);
  CHECK(get("/targets/db/primary").body ==
        "not primary: the server is a standby (in_hot_standby=on)\n");
  CHECK(get("/targets/db/replica").body == "replica: up (1 healthy), in_hot_standby=on\n");

  // Down: every check is 503 and says why.
  b.lose("db", 0, pgwd::Cause::immediate_shutdown, "57P01");
  reply = get("/targets/db/up");
  CHECK(reply.status == 503);
  CHECK(reply.body.starts_with("down for "));
  CHECK(reply.body.find("; last disconnect: immediate_shutdown (57P01) at ") != std::string::npos);
  CHECK(get("/targets/db/replica").body.starts_with("not a replica: down for "));
  pgwd::ConnectFailedEvent failed;
  failed.connection = {"db", 0};
  b.board.on_connect_failed(failed);
  CHECK(get("/targets/db/up").body.find("; last connect failure: connect_failed, ") !=
        std::string::npos);

  // Back, on a server whose role is not known yet: the role before the outage is not trusted
  // (a failover may have turned it), so neither role check passes until the server says.
  b.state("db", 0, ConnectionState::connecting, ConnectionState::healthy);
  CHECK(get("/targets/db/replica").body.starts_with("not a replica: role unknown"));
  CHECK(get("/targets/db/primary").body.starts_with("not primary: role unknown"));
  healthy.server.in_hot_standby = "off";
  b.board.on_healthy(healthy);
  CHECK(get("/targets/db/primary").status == 200);

  // Another server behind a pooler answers, a standby.
  pgwd::ServerChangeEvent change;
  change.connection = {"db", 0};
  change.now.in_hot_standby = "on";
  b.board.on_server_change(change);
  CHECK(get("/targets/db/replica").status == 200);

  // Unknown targets and checks.
  reply = get("/targets/nope/up");
  CHECK(reply.status == 404);
  CHECK(reply.body == "no target named \"nope\" (GET /api/v1/targets lists them)\n");
  CHECK(get("/targets/a\"b\n/up").body == "no target named \"a\\\"b\\n\" (GET /api/v1/targets lists them)\n");
  CHECK(get("/targets/db/leader").status == 404);
  CHECK(get("/targets/other/up").status == 503);
}

TEST_CASE("target endpoints: a target with several connections is up while one is") {
  Board b({"db"}, 3);
  b.connect("db", 0, "off");
  b.connect("db", 1, "off");
  b.connect("db", 2, "off");
  b.lose("db", 1, pgwd::Cause::server_shutdown, "57P01");
  auto reply = b.handler("/targets/db/primary");
  CHECK(reply.status == 200);
  CHECK(reply.body == "primary: up (2 healthy, 1 backoff), in_hot_standby=off\n");
  b.lose("db", 0, pgwd::Cause::server_shutdown, "57P01");
  b.lose("db", 2, pgwd::Cause::server_shutdown, "57P01");
  CHECK(b.handler("/targets/db/primary").status == 503);
  CHECK(b.handler("/targets/db/up").body.starts_with("down for "));
}

TEST_CASE("api: /api/v1/targets is every target in configuration order with names escaped") {
  Board b({"zeta", "alpha \"quoted\" \\ back", "pending"}, 2);
  b.connect("zeta", 0, "off");
  b.connect("zeta", 1, "off");
  b.connect("alpha \"quoted\" \\ back", 0, "on");
  b.lose("alpha \"quoted\" \\ back", 0, pgwd::Cause::server_shutdown, "57P01");
  b.state("alpha \"quoted\" \\ back", 1, ConnectionState::connecting, ConnectionState::backoff);
  pgwd::ConnectFailedEvent failed;
  failed.connection = {"alpha \"quoted\" \\ back", 1};
  failed.cause = pgwd::Cause::auth_failed;
  b.board.on_connect_failed(failed);

  const auto reply = b.handler("/api/v1/targets");
  CHECK(reply.status == 200);
  CHECK(reply.content_type == "application/json");
  const std::string& json = reply.body;
  CHECK(json.starts_with("{\"as_of\":\""));
  const auto zeta = json.find("{\"name\":\"zeta\",\"state\":\"up\",\"role\":\"primary\","
                              "\"in_hot_standby\":\"off\",\"connections\":{\"total\":2,"
                              "\"healthy\":2,\"probing\":0,");
  const auto alpha = json.find("{\"name\":\"alpha \\\"quoted\\\" \\\\ back\",\"state\":\"down\","
                               "\"role\":\"unknown\",\"in_hot_standby\":null,");
  const auto pending = json.find("{\"name\":\"pending\",\"state\":\"pending\"");
  CHECK(zeta != std::string::npos);
  CHECK(alpha != std::string::npos);
  CHECK(pending != std::string::npos);
  CHECK(zeta < alpha);
  CHECK(alpha < pending);
  CHECK(json.find("\"outage_seconds\":null,\"last_disconnect\":null,\"last_connect_failure\":null}") !=
        std::string::npos);  // zeta
  CHECK(json.find("\"last_disconnect\":{\"cause\":\"server_shutdown\",\"sqlstate\":\"57P01\","
                  "\"at\":\"") != std::string::npos);
  CHECK(json.find("\"last_connect_failure\":{\"cause\":\"auth_failed\",\"at\":\"") !=
        std::string::npos);
  CHECK(json.ends_with("\n]}\n"));
}

TEST_CASE("json text: quotes - backslashes and control characters are escaped - UTF-8 kept") {
  CHECK(pgwd::json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(pgwd::json_string("\n\r\t\x01\x1f") == "\"\\n\\r\\t\\u0001\\u001f\"");
  CHECK(pgwd::json_string("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
}

TEST_CASE("target endpoints: a check costs one target's copy - 10000 targets answer fast") {
  std::vector<std::string> names;
  for (int i = 0; i < 10000; ++i) names.push_back("db-" + std::to_string(i));
  Board b(names, 2);
  for (int i = 0; i < 10000; ++i) b.connect("db-" + std::to_string(i), 0, i % 2 ? "on" : "off");
  // Its CPU time: what answering spends, whatever the machine's load.
  const auto start = pgwd::testing::thread_cpu_time();
  int ok = 0;
  for (int i = 0; i < 1000; ++i)
    ok += b.handler("/targets/db-" + std::to_string(i * 10) + "/primary").status == 200;
  const auto took = pgwd::testing::thread_cpu_time() - start;
  MESSAGE("1000 checks among 10000 targets: ",
          std::chrono::duration_cast<std::chrono::microseconds>(took).count(), " us");
  CHECK(ok == 1000);  // i * 10 is even: every one a primary
  // A walk over 10,000 targets per check would be ~1000x more.
  CHECK(took < 500ms);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
