// End-to-end: the endpoints a proxy routes by (docs/daemon.md "Target endpoints"), on the real
// daemon against real servers: a request storm sends the database nothing, names are
// percent-decoded, HEAD/OPTIONS/405, TLS and basic auth as on /metrics, and Debian's HAProxy
// routing by the documented configuration (deploy/haproxy/haproxy.cfg) through a promotion.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pg/handles.hpp"
#include "support/bcrypt_hash.hpp"
#include "support/daemon_fixture.hpp"
#include "support/server_tools.hpp"
#include "support/standby_cluster.hpp"
#include "support/subprocess.hpp"
#include "support/tls_certificates.hpp"
#include "support/web_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::curl;
using pgwd::testing::DaemonFixture;
using pgwd::testing::DaemonProcess;
using pgwd::testing::http_get;
using pgwd::testing::run_process;
using pgwd::testing::ShutdownMode;
using pgwd::testing::StandbyCluster;
using pgwd::testing::TlsCertificates;
using pgwd::testing::WebFixture;

namespace {

struct EndpointFixture : DaemonFixture {
  pgwd::testing::HttpResponse get(const std::string& path) const {
    return http_get("127.0.0.1", metrics_port, path);
  }
  bool wait_status(const std::string& path, int status, std::chrono::milliseconds timeout) {
    return waiter.run_until([&] { return get(path).status == status; }, timeout);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(metrics_port) + path;
  }
};

/// `expression` evaluated by python3 on the JSON document `json` (bound to `d`), printed.
std::string json_query(const std::string& json, const std::string& expression) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto file = dir / ("pgwd-api-" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << json;
  const auto result = run_process(
      {"python3", "-c", "import json,sys; d=json.load(open(sys.argv[1])); print(" + expression + ")",
       file.string()});
  std::filesystem::remove(file);
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  return result.output.substr(0, result.output.find_last_not_of('\n') + 1);
}

/// pg_is_in_recovery() ("t" or "f") of the server a new connection to 127.0.0.1:port reaches,
/// or "" when none answers (HAProxy with no server UP closes the connection).
std::string in_recovery_through(int port, const std::string& password) {
  const std::string conninfo =
      pgwd::testing::role_conninfo("127.0.0.1", port, password, "through-haproxy") +
      " connect_timeout=2";
  pgwd::PgConnPtr conn(PQconnectdb(conninfo.c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) return "";
  pgwd::PgResultPtr result(PQexec(conn.get(), "SELECT pg_is_in_recovery()"));
  if (!result || PQresultStatus(result.get()) != PGRES_TUPLES_OK) return "";
  return pgwd::testing::first_value(result.get());
}

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "deploy/haproxy/haproxy.cfg lacks: " << from);
  text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE_FIXTURE(EndpointFixture,
                  "target endpoints: 3000 requests send the database no statement") {
  write_config("targets:\n" + target_yaml("db", 2));
  start_with_config();
  REQUIRE(wait_status("/targets/db/primary", 200, 10s));
  const auto probes = [&] {
    return metric("pgwatchdog_probes_total{result=\"ok\",target=\"db\"}").value_or(-1);
  };
  const double probes_before = probes();
  const auto started = std::chrono::steady_clock::now();
  int answered = 0;
  for (int i = 0; i < 1000; ++i) {
    answered += get("/targets/db/primary").status == 200;
    answered += get("/targets/db/up").status == 200;
    answered += get(i % 2 ? "/targets/db/replica" : "/api/v1/targets").status != 0;
  }
  const auto took = std::chrono::steady_clock::now() - started;
  MESSAGE("3000 requests in ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
          " ms");
  CHECK(answered == 3000);
  // The server logs every statement (log_statement = all): the daemon's sessions sent none, ever.
  CHECK(cluster.count_statements("db") == 0);
  // The daemon's own count: nothing but its heartbeats (one per target, turns 3.75-4.375 s apart
  // with the default 5 s: heartbeat_rota.cpp), which are not statements, and no wake-up of a
  // connection.
  const double beats = probes() - probes_before;
  const double most = 1 + std::chrono::duration<double>(took).count() / 3.75;
  CHECK(beats <= most);
  CHECK(metric("pgwatchdog_wakeups_total{target=\"db\"}") == 0);
}

TEST_CASE_FIXTURE(EndpointFixture,
                  "target endpoints: names are percent-decoded - HEAD and OPTIONS answer as GET - "
                  "other methods 405 with Allow") {
  // A name with '/', ' ', '%' and UTF-8: the path's last segment is the check, so '/' may be sent
  // as it is or as %2F.
  // heartbeat: 0 so that each body is exact: a heartbeat in flight reads "1 probing", not
  // "1 healthy" (CI's ASan run of be20b8a caught one).
  write_config("defaults:\n  heartbeat: 0\ntargets:\n  - name: 'eu/db 1%'\n    dsn: \"" +
               cluster.conninfo("eudb") +
               "\"\n  - name: \"caf\xC3\xA9\"\n    dsn: \"" + cluster.conninfo("cafe") + "\"\n");
  start_with_config();
  REQUIRE(wait_status("/targets/eu%2Fdb%201%25/primary", 200, 10s));
  CHECK(get("/targets/eu/db%201%25/primary").status == 200);
  CHECK(get("/targets/eu%2fdb%201%25/replica").status == 503);
  REQUIRE(wait_status("/targets/caf%C3%A9/up", 200, 10s));
  CHECK(get("/targets/caf%C3%A9/up").body == "up: 1 healthy\n");

  const auto missing = get("/targets/nobody%20here/up");
  CHECK(missing.status == 404);
  CHECK(missing.body == "no target named \"nobody here\" (GET /api/v1/targets lists them)\n");
  CHECK(get("/targets/eu%2/up").status == 400);
  CHECK(get("/targets/x%00/up").status == 400);
  CHECK(get("/targets/caf%C3%A9/leader").status == 404);

  // OPTIONS (HAProxy's default check method) and HEAD: GET's status, and Allow on OPTIONS.
  auto options = run_process({"curl", "-s", "-i", "-X", "OPTIONS", "--max-time", "10",
                              url("/targets/caf%C3%A9/primary")});
  CHECK(options.output.starts_with("HTTP/1.1 200"));
  CHECK(options.output.find("Allow: GET, HEAD, OPTIONS\r\n") != std::string::npos);
  CHECK(options.output.find("Cache-Control: no-store\r\n") != std::string::npos);
  CHECK(options.output.find("primary: up (1 healthy), in_hot_standby=off") != std::string::npos);
  options = run_process({"curl", "-s", "-i", "-X", "OPTIONS", "--max-time", "10",
                         url("/targets/caf%C3%A9/replica")});
  CHECK(options.output.starts_with("HTTP/1.1 503"));
  const auto head = run_process({"curl", "-s", "-I", "--max-time", "10", url("/targets/caf%C3%A9/up")});
  CHECK(head.output.starts_with("HTTP/1.1 200"));
  CHECK(head.output.find("up: 1 healthy") == std::string::npos);  // no body
  const auto post = run_process({"curl", "-s", "-i", "-X", "POST", "--max-time", "10",
                                 url("/targets/caf%C3%A9/up")});
  CHECK(post.output.starts_with("HTTP/1.1 405"));
  CHECK(post.output.find("Allow: GET, HEAD, OPTIONS\r\n") != std::string::npos);

  // The API: the same state, as JSON that parses.
  const auto api = get("/api/v1/targets");
  REQUIRE(api.status == 200);
  CHECK(api.headers.find("Content-Type: application/json") != std::string::npos);
  CHECK(json_query(api.body, "[t['name'] for t in d['targets']]") == "['eu/db 1%', 'café']");
  CHECK(json_query(api.body, "d['targets'][1]['state'], d['targets'][1]['role'], "
                             "d['targets'][1]['connections']['healthy']") ==
        "up primary 1");

  // Down: 503 everywhere with the cause; the API has the outage and the last disconnect.
  cluster.stop(ShutdownMode::immediate);
  REQUIRE(wait_status("/targets/caf%C3%A9/up", 503, 10s));
  const auto down = get("/targets/caf%C3%A9/primary");
  CHECK(down.status == 503);
  CHECK(down.body.starts_with("not primary: down for "));
  CHECK(down.body.find("last disconnect: ") != std::string::npos);
  const auto after = get("/api/v1/targets").body;
  CHECK(json_query(after, "d['targets'][1]['state'], d['targets'][1]['role'], "
                          "d['targets'][1]['outage_seconds'] >= 0, "
                          "d['targets'][1]['last_disconnect']['cause'] != ''") ==
        "down unknown True True");
}

TEST_CASE_FIXTURE(WebFixture,
                  "target endpoints: behind TLS and basic auth like /metrics unless health "
                  "checks are left open") {
  TlsCertificates certs("localhost");
  write_web("tls_server_config:\n  cert_file: " + certs.cert_file() + "\n  key_file: " +
            certs.key_file() + "\nbasic_auth_users:\n  haproxy: " +
            pgwd::testing::bcrypt_hash("check-secret") + "\n");
  start_web();
  const auto https = [&](const std::string& path) { return url("https", path); };
  const std::string ca = certs.ca_file();
  REQUIRE(waiter.run_until(
      [&] {
        return curl({"--cacert", ca, "-u", "haproxy:check-secret", https("/targets/main/primary")})
                   .status == "200";
      },
      10s));
  CHECK(curl({"--cacert", ca, https("/targets/main/primary")}).status == "401");
  CHECK(curl({"--cacert", ca, "-u", "haproxy:wrong", https("/targets/main/up")}).status == "401");
  CHECK(curl({"--cacert", ca, "-X", "OPTIONS", https("/targets/main/up")}).status == "401");
  CHECK(curl({"--cacert", ca, https("/api/v1/targets")}).status == "401");
  CHECK(curl({"--cacert", ca, "-u", "haproxy:check-secret", https("/api/v1/targets")}).status ==
        "200");
  CHECK(curl({"--cacert", ca, https("/targets/nobody/up")}).status == "401");  // nothing leaks
  CHECK(curl({url("http", "/targets/main/up")}).status == "000");  // TLS only
  CHECK(daemon->output().find("check-secret") == std::string::npos);
}

TEST_CASE_FIXTURE(WebFixture,
                  "target endpoints: --web.health-without-auth opens the checks and not the API") {
  TlsCertificates certs("localhost");
  const auto [client_cert, client_key] = certs.issue_client_certificate("prometheus");
  write_web("tls_server_config:\n  cert_file: " + certs.cert_file() + "\n  key_file: " +
            certs.key_file() + "\n  client_auth_type: RequireAndVerifyClientCert\n"
            "  client_ca_file: " + certs.ca_file() + "\nbasic_auth_users:\n  prometheus: " +
            pgwd::testing::bcrypt_hash("pw") + "\n");
  start_web({"--web.health-without-auth"});
  const auto https = [&](const std::string& path) { return url("https", path); };
  const std::string ca = certs.ca_file();
  // No certificate, no password: the checks answer (TLS still applies).
  CHECK(waiter.run_until(
      [&] { return curl({"--cacert", ca, https("/targets/main/primary")}).status == "200"; }, 10s));
  CHECK(curl({"--cacert", ca, https("/targets/main/replica")}).status == "503");
  CHECK(curl({"--cacert", ca, "-X", "OPTIONS", https("/targets/main/up")}).status == "200");
  CHECK(curl({"--cacert", ca, https("/targets/nobody/up")}).status == "404");
  // The API, like /metrics and the status page, still wants both.
  CHECK(curl({"--cacert", ca, https("/api/v1/targets")}).status == "403");
  CHECK(curl({"--cacert", ca, "--cert", client_cert, "--key", client_key,
              https("/api/v1/targets")})
            .status == "401");
  CHECK(curl({"--cacert", ca, "--cert", client_cert, "--key", client_key, "-u", "prometheus:pw",
              https("/api/v1/targets")})
            .status == "200");
  CHECK(curl({"--cacert", ca, https("/metrics")}).status == "403");
}

// Debian's HAProxy with deploy/haproxy/haproxy.cfg (addresses and ports swapped for the test's):
// port "primary" reaches the primary and "replicas" the standby, each server checked by
// /targets/<server name>/primary|replica; after the primary dies and the standby is promoted,
// "primary" reaches the promoted one and "replicas" nothing.
TEST_CASE_FIXTURE(EndpointFixture,
                  "haproxy: the documented configuration routes by the target endpoints through "
                  "a promotion") {
  StandbyCluster standby(cluster);
  // A 500 ms heartbeat: the promotion shows within half a second (the default, 5 s, would too).
  write_config("defaults:\n  heartbeat: 500ms\n  backoff_max: 300ms\ntargets:\n" +
               target_yaml("node1", 1) + "  - name: node2\n    dsn: \"" +
               standby.conninfo("node2") + "\"\n    connections: 1\n");
  start_with_config();
  REQUIRE(wait_status("/targets/node1/primary", 200, 10s));
  REQUIRE(wait_status("/targets/node2/replica", 200, 10s));

  std::ifstream in(std::filesystem::path(PGWD_SOURCE_DIR) / "deploy/haproxy/haproxy.cfg");
  std::stringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  const int primary_port = pgwd::testing::free_tcp_port();
  const int replicas_port = pgwd::testing::free_tcp_port();
  replace_once(config, "bind *:5000", "bind 127.0.0.1:" + std::to_string(primary_port));
  replace_once(config, "bind *:5001", "bind 127.0.0.1:" + std::to_string(replicas_port));
  for (int i = 0; i < 2; ++i) {
    replace_once(config, "addr 10.0.0.5 port 10432",
                 "addr 127.0.0.1 port " + std::to_string(metrics_port));
    replace_once(config, "10.0.0.11:5432", "127.0.0.1:" + std::to_string(cluster.port()));
    replace_once(config, "10.0.0.12:5432", "127.0.0.1:" + std::to_string(standby.port()));
  }
  const auto config_file = config_path.parent_path() / "haproxy.cfg";
  std::ofstream(config_file) << config;
  const auto check = run_process({"haproxy", "-c", "-f", config_file.string()});
  REQUIRE_MESSAGE(check.exit_code == 0, check.output);
  DaemonProcess haproxy("haproxy", {"-db", "-f", config_file.string()});

  const std::string password = cluster.password();
  // HAProxy starts its servers UP and takes them out by their checks: wait until four connections
  // in a row (round robin over both servers) reach the expected one.
  const auto settled = [&](int port, const std::string& expected) {
    return waiter.run_until(
        [&] {
          for (int i = 0; i < 4; ++i)
            if (in_recovery_through(port, password) != expected) return false;
          return true;
        },
        10s);
  };
  CHECK(settled(primary_port, "f"));
  CHECK(settled(replicas_port, "t"));

  // The primary dies; no server is the primary until the standby is promoted.
  cluster.stop(ShutdownMode::immediate);
  REQUIRE(wait_status("/targets/node1/primary", 503, 10s));
  standby.promote();
  REQUIRE(wait_status("/targets/node2/primary", 200, 10s));
  const auto seen = std::chrono::steady_clock::now();
  // HAProxy says when it marks a server UP (on stderr, in the foreground): that is when the
  // promoted standby takes clients. The clients below show when routing is settled, not when it
  // turned: one that connected while no server was UP was seen to wait out its own
  // connect_timeout (2 s).
  REQUIRE(haproxy.wait_for_output("Server primary/node2 is UP", 10s));
  const auto marked_up = std::chrono::steady_clock::now() - seen;
  CHECK(settled(primary_port, "f"));
  MESSAGE("HAProxy marked the promoted standby UP in `primary` ",
          std::chrono::duration_cast<std::chrono::milliseconds>(marked_up).count(),
          " ms after pgwatchdog's /primary said 200");
  // No standby is left: "replicas" reaches no server (never the new primary).
  CHECK(settled(replicas_port, ""));
  CHECK(get("/targets/node2/replica").status == 503);
  CHECK(haproxy.running());
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
