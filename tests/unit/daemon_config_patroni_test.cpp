#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "daemon/config.hpp"
#include "daemon/effective_config.hpp"
#include "daemon/patroni/rest_url.hpp"
#include "support/error_message.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::daemon;

namespace {

constexpr std::string_view kOrigin = "pgwatchdog.yaml";

std::string error_of(std::string_view yaml) {
  return testing::message_of<ConfigError>([&] { (void)parse_config(yaml, kOrigin); });
}

std::string url_error_of(std::string_view url) {
  return testing::message_of<std::invalid_argument>([&] { (void)checked_rest_url(url); });
}

}  // namespace

TEST_CASE("daemon config: a target with patroni is a cluster, with its members' settings") {
  const DaemonConfig config = parse_config(R"(
defaults:
  connections: 2
targets:
  - name: plain
    dsn: "host=db1"
  - name: orders
    patroni: ["http://10.0.0.1:8008/", "https://10.0.0.2:8008"]
    dsn: "user=watchdog dbname=app sslmode=require password=pw"
    discovery_interval: 2s
    heartbeat: 1s
  - name: billing
    patroni: ["http://pg-billing:8008"]
)",
                                           kOrigin);
  REQUIRE(config.targets.size() == 1);
  CHECK(config.targets[0].name == "plain");
  REQUIRE(config.patroni_clusters.size() == 2);
  const PatroniCluster& orders = config.patroni_clusters[0];
  CHECK(orders.name() == "orders");
  CHECK(orders.rest_api ==
        std::vector<std::string>{"http://10.0.0.1:8008", "https://10.0.0.2:8008"});
  CHECK(orders.discovery_interval == 2s);
  CHECK(orders.members.heartbeat == 1s);
  CHECK(orders.members.connections == 2);
  CHECK(orders.members.conninfo == "user=watchdog dbname=app sslmode=require password=pw");
  const PatroniCluster& billing = config.patroni_clusters[1];
  CHECK(billing.discovery_interval == kDefaultDiscoveryInterval);
  CHECK(billing.members.conninfo.empty());  // libpq's defaults and environment
}

TEST_CASE("daemon config: a cluster's password_file goes into its members' connection options") {
  const std::string path = "/tmp/pgwd-patroni-config-test-password";
  { std::ofstream(path) << "s3cret\n"; }
  const DaemonConfig config = parse_config(
      "targets:\n  - name: c\n    patroni: [\"http://h:8008\"]\n    dsn: \"user=w\"\n"
      "    password_file: " +
          path + "\n",
      kOrigin);
  std::remove(path.c_str());
  REQUIRE(config.patroni_clusters.size() == 1);
  CHECK(config.patroni_clusters[0].members.conninfo.find("password='s3cret'") != std::string::npos);
  // --check-config shows it redacted, and the file's path as a comment.
  const std::string shown = to_yaml(config);
  CHECK(shown.find("s3cret") == std::string::npos);
  CHECK(shown.find("    patroni: [\"http://h:8008\"]\n") != std::string::npos);
  CHECK(shown.find("    discovery_interval: 10s\n") != std::string::npos);
  CHECK(shown.find("# password_file: \"" + path + "\"") != std::string::npos);
}

TEST_CASE("daemon config: --check-config's output of a cluster loads back to the same cluster") {
  const DaemonConfig config = parse_config(R"(
targets:
  - name: a
    dsn: "host=db1"
  - name: orders
    patroni: ["http://10.0.0.1:8008"]
    dsn: "user=watchdog"
    discovery_interval: 1500ms
)",
                                           kOrigin);
  const DaemonConfig again = parse_config(to_yaml(config), kOrigin);
  REQUIRE(again.patroni_clusters.size() == 1);
  CHECK(again.patroni_clusters[0].rest_api == config.patroni_clusters[0].rest_api);
  CHECK(again.patroni_clusters[0].discovery_interval == 1500ms);
  CHECK(again.patroni_clusters[0].members.conninfo == "user='watchdog'");  // as libpq writes it
  CHECK(to_yaml(again) == to_yaml(config));
}

TEST_CASE("daemon config: what a cluster may not have is refused at its line") {
  CHECK(error_of("targets:\n  - name: c\n    patroni: [\"http://h:8008\"]\n"
                 "    dsn: \"host=db1 user=w\"\n") ==
        "pgwatchdog.yaml:4: target 'c': the dsn of a Patroni cluster may not set host: each "
        "member's host and port come from the cluster");
  CHECK(error_of("targets:\n  - name: c\n    patroni: [\"http://h:8008\"]\n"
                 "    dsn: \"port=5433\"\n") ==
        "pgwatchdog.yaml:4: target 'c': the dsn of a Patroni cluster may not set port: each "
        "member's host and port come from the cluster");
  CHECK(error_of("targets:\n  - name: c\n    patroni: []\n") ==
        "pgwatchdog.yaml:3: target 'c': patroni needs at least one REST API URL");
  CHECK(error_of("targets:\n  - name: c\n    patroni: [\"ftp://h\"]\n") ==
        "pgwatchdog.yaml:3: target 'c': patroni: 'ftp://h': the scheme must be http or https");
  CHECK(error_of("targets:\n  - name: c\n    patroni: [\"http://u:pw@h:8008\"]\n") ==
        "pgwatchdog.yaml:3: target 'c': patroni: a URL with a user or password (not shown); "
        "Patroni's GET /cluster needs none");
  CHECK(error_of("targets:\n  - name: c\n    dsn: \"host=h\"\n    discovery_interval: 5s\n") ==
        "pgwatchdog.yaml:4: target 'c': discovery_interval is for a Patroni cluster only (a "
        "target with patroni:)");
  CHECK(error_of("targets:\n  - name: c\n    patroni: [\"http://h\"]\n"
                 "    discovery_interval: 10ms\n")
            .starts_with("pgwatchdog.yaml:4: discovery_interval: '10ms' is out of range"));
  CHECK(error_of("targets:\n  - name: c\n    dsn: \"host=h\"\n  - name: c\n"
                 "    patroni: [\"http://h\"]\n") ==
        "pgwatchdog.yaml:4: target 'c' is defined twice (first at line 2)");
}

TEST_CASE("daemon config: REST API URLs are checked by libcurl's parser, secrets never shown") {
  CHECK(checked_rest_url("http://10.0.0.1:8008") == "http://10.0.0.1:8008");
  CHECK(checked_rest_url("https://pg-1.internal:8008//") == "https://pg-1.internal:8008");
  CHECK(checked_rest_url("http://[::1]:8008") == "http://[::1]:8008");
  CHECK(url_error_of("10.0.0.1:8008") == "'10.0.0.1:8008' is not a URL (write http://HOST:PORT)");
  CHECK(url_error_of("http://h:8008/?x=1") ==
        "'http://h:8008/?x=1': the base URL may not have a query or fragment");
  CHECK(url_error_of("http://user@h") ==
        "a URL with a user or password (not shown); Patroni's GET /cluster needs none");
  CHECK(url_error_of("http://us er:p@ss@h:x") ==
        "a URL that libcurl cannot parse (not shown: it has an '@')");
  CHECK(url_error_of("http://h:99999") == "'http://h:99999' is not a URL (write http://HOST:PORT)");
}

TEST_CASE("daemon config: a cluster alone is a configuration, and sharding keeps a cluster whole") {
  const std::string path = "/tmp/pgwd-patroni-config-test.yaml";
  {
    std::ofstream file(path);
    file << "targets:\n";
    for (int i = 0; i < 8; ++i)
      file << "  - name: c" << i << "\n    patroni: [\"http://h" << i << ":8008\"]\n";
  }
  CommandLine cli;
  cli.config_path = path;
  const DaemonConfig all = effective_config(cli);
  CHECK(all.patroni_clusters.size() == 8);
  std::size_t seen = 0;
  for (const char* shard : {"0", "1"}) {
    CommandLine sharded = cli;
    sharded.shard = shard;
    sharded.total_shards = "2";
    seen += effective_config(sharded).patroni_clusters.size();
  }
  std::remove(path.c_str());
  CHECK(seen == 8);
}

TEST_CASE("daemon config: --check-config's warnings know a cluster's members and its heartbeat") {
  const DaemonConfig config = parse_config(R"(
targets:
  - name: pooled
    dsn: "host=pgbouncer"
    pooler: pgbouncer
    in_front_of: orders/pg1
  - name: orders
    patroni: ["http://10.0.0.1:8008"]
    heartbeat: 0s
)",
                                           kOrigin);
  const std::string out = warnings(config);
  // orders/pg1 is a member's target: no "does not watch" for it.
  CHECK(out.find("in_front_of") == std::string::npos);
  CHECK(out.find("# warning: Patroni cluster \"orders\" has heartbeat 0: a member promoted while "
                 "its connections are idle is not seen") != std::string::npos);
  CHECK(out.find("# warning: target \"orders\" has heartbeat 0") != std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
