// Self-test of the throwaway cluster harness: every other integration test relies on it.
#include "support/test_cluster.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pg/handles.hpp"
#include "support/subprocess.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::PgConnPtr;
using pgwd::PgResultPtr;
using pgwd::testing::ClusterSettings;
using pgwd::testing::ShutdownMode;
using pgwd::testing::TestCluster;

namespace {

PgConnPtr connect(const std::string& conninfo) {
  return PgConnPtr(PQconnectdb(conninfo.c_str()));
}

bool connected(const PgConnPtr& conn) {
  return conn && PQstatus(conn.get()) == CONNECTION_OK;
}

// Value of a one-value query, or "<error: ...>" so a failing CHECK shows why.
std::string value_of(PGconn* conn, const char* sql) {
  const PgResultPtr result(PQexec(conn, sql));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK)
    return std::string("<error: ") + PQerrorMessage(conn) + ">";
  return PQgetvalue(result.get(), 0, 0);
}

bool query_ok(PGconn* conn, const char* sql) {
  const PgResultPtr result(PQexec(conn, sql));
  const ExecStatusType status = PQresultStatus(result.get());
  return status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
}

// Whether the connection's socket becomes readable within `timeout`.
bool readable_within(PGconn* conn, std::chrono::milliseconds timeout) {
  pollfd fd{PQsocket(conn), POLLIN, 0};
  return ::poll(&fd, 1, static_cast<int>(timeout.count())) > 0;
}

}  // namespace

TEST_CASE("test cluster: starts and the watchdog role connects over TCP") {
  const TestCluster cluster;
  CHECK(cluster.port() > 0);
  CHECK(cluster.host() == "127.0.0.1");
  CHECK(cluster.user() == "watchdog");
  CHECK(cluster.password().size() == 16);

  const PgConnPtr conn = connect(cluster.conninfo("selftest"));
  REQUIRE_MESSAGE(connected(conn), PQerrorMessage(conn.get()));
  CHECK(value_of(conn.get(), "SELECT 1") == "1");
  CHECK(value_of(conn.get(), "SELECT current_user") == "watchdog");
  CHECK(value_of(conn.get(), "SHOW application_name") == "selftest");
  CHECK(value_of(conn.get(), "SELECT inet_server_addr()::text") == "127.0.0.1/32");
  CHECK(value_of(conn.get(), "SHOW max_connections") == "200");
  CHECK(cluster.query_value("SHOW port") == std::to_string(cluster.port()));
  CHECK(cluster.query_value("SELECT current_user") == "postgres");
}

TEST_CASE("test cluster: the password stays out of the server log") {
  const TestCluster cluster;
  const PgConnPtr conn = connect(cluster.conninfo("selftest"));
  REQUIRE(connected(conn));
  const std::string log = pgwd::testing::run_checked({"cat", cluster.log_path()});
  CHECK(log.find(cluster.password()) == std::string::npos);
}

TEST_CASE("test cluster: a wrong password is rejected") {
  const TestCluster cluster;
  const PgConnPtr conn = connect(cluster.conninfo_with_password("selftest", "not-the-password"));
  REQUIRE(conn);
  CHECK(PQstatus(conn.get()) == CONNECTION_BAD);
  CHECK(std::string(PQerrorMessage(conn.get())).find("password authentication failed") !=
        std::string::npos);
}

TEST_CASE("test cluster: extra_config lines override the defaults") {
  const TestCluster cluster(ClusterSettings{{"max_connections = 37", "work_mem = '7MB'"}});
  CHECK(cluster.query_value("SHOW max_connections") == "37");
  CHECK(cluster.query_value("SHOW work_mem") == "7MB");
}

TEST_CASE("test cluster: a bad setting makes the constructor throw with the server's complaint") {
  std::string message;
  try {
    const TestCluster cluster(ClusterSettings{{"no_such_setting_at_all = 1"}});
  } catch (const std::runtime_error& error) {
    message = error.what();
  }
  CHECK(message.find("pg_ctl start") != std::string::npos);
  CHECK(message.find("no_such_setting_at_all") != std::string::npos);
}

TEST_CASE("test cluster: admin helpers report server errors") {
  const TestCluster cluster;
  std::string message;
  try {
    cluster.execute("SELECT * FROM no_such_table");
  } catch (const std::runtime_error& error) {
    message = error.what();
  }
  CHECK(message.find("no_such_table") != std::string::npos);
  CHECK(cluster.query_value("SELECT 1 WHERE false").empty());
  CHECK(cluster.query_value("SELECT NULL").empty());
  cluster.execute("CREATE TABLE harness_check (x int); INSERT INTO harness_check VALUES (41)");
  CHECK(cluster.query_value("SELECT x + 1 FROM harness_check") == "42");
}

TEST_CASE("test cluster: count_statements counts one application's statements exactly") {
  const TestCluster cluster;
  const PgConnPtr counted = connect(cluster.conninfo("counted"));
  const PgConnPtr longer = connect(cluster.conninfo("counted_too"));
  REQUIRE(connected(counted));
  REQUIRE(connected(longer));
  CHECK(cluster.count_statements("counted") == 0);

  CHECK(query_ok(counted.get(), "SELECT 1"));
  CHECK(query_ok(counted.get(), "SELECT 2"));
  CHECK(query_ok(counted.get(), "SELECT 'a\nmulti-line' AS statement"));
  CHECK(query_ok(longer.get(), "SELECT 3"));

  CHECK(cluster.count_statements("counted") == 3);
  CHECK(cluster.count_statements("counted_too") == 1);
  CHECK(cluster.count_statements("count") == 0);
  CHECK(cluster.count_statements("other") == 0);

  // The extended query protocol is logged as "execute <name>: ...", once per execution.
  const char* const params[] = {"5"};
  const PgResultPtr result(
      PQexecParams(counted.get(), "SELECT $1::int", 1, nullptr, params, nullptr, nullptr, 0));
  CHECK(PQresultStatus(result.get()) == PGRES_TUPLES_OK);
  CHECK(cluster.count_statements("counted") == 4);
}

TEST_CASE("test cluster: backend_pids and terminate_backends") {
  const TestCluster cluster;
  const PgConnPtr victim = connect(cluster.conninfo("victim"));
  const PgConnPtr bystander = connect(cluster.conninfo("bystander"));
  REQUIRE(connected(victim));
  REQUIRE(connected(bystander));

  CHECK(cluster.backend_pids("victim") == std::vector<int>{PQbackendPID(victim.get())});
  CHECK(cluster.backend_pids("nobody").empty());
  CHECK(cluster.terminate_backends("victim") == 1);
  CHECK_FALSE(query_ok(victim.get(), "SELECT 1"));
  CHECK(PQstatus(victim.get()) == CONNECTION_BAD);
  CHECK(value_of(bystander.get(), "SELECT 1") == "1");
  CHECK(cluster.terminate_backends("nobody") == 0);
}

TEST_CASE("test cluster: stop, start and restart keep the cluster usable") {
  TestCluster cluster;
  const int port = cluster.port();
  for (const ShutdownMode mode : {ShutdownMode::fast, ShutdownMode::immediate}) {
    CAPTURE(static_cast<int>(mode));
    const PgConnPtr before = connect(cluster.conninfo("before"));
    REQUIRE(connected(before));
    cluster.restart(mode);
    CHECK_FALSE(query_ok(before.get(), "SELECT 1"));
    const PgConnPtr after = connect(cluster.conninfo("after"));
    REQUIRE_MESSAGE(connected(after), PQerrorMessage(after.get()));
    CHECK(value_of(after.get(), "SELECT 1") == "1");
  }

  cluster.stop(ShutdownMode::fast);
  const PgConnPtr while_down = connect(cluster.conninfo("down"));
  CHECK_FALSE(connected(while_down));
  CHECK_THROWS_AS(cluster.query_value("SELECT 1"), std::runtime_error);
  CHECK_THROWS_AS(cluster.stop(ShutdownMode::fast), std::runtime_error);

  cluster.start();
  CHECK(cluster.port() == port);
  PgConnPtr again = connect(cluster.conninfo("again"));
  REQUIRE(connected(again));
  CHECK(value_of(again.get(), "SELECT 1") == "1");
  again.reset();  // a smart shutdown waits for every session to end
  cluster.stop(ShutdownMode::smart);
  // The destructor copes with a stopped cluster.
}

TEST_CASE("test cluster: restart from a helper thread") {
  TestCluster cluster;
  std::thread helper([&cluster] { cluster.restart(ShutdownMode::fast); });
  helper.join();
  const PgConnPtr conn = connect(cluster.conninfo("after_thread"));
  REQUIRE(connected(conn));
  CHECK(value_of(conn.get(), "SELECT 1") == "1");
}

TEST_CASE("test cluster: a paused backend answers only once resumed") {
  TestCluster cluster;
  const PgConnPtr conn = connect(cluster.conninfo("paused"));
  REQUIRE(connected(conn));
  const int pid = PQbackendPID(conn.get());

  cluster.pause_backend(pid);
  REQUIRE(PQsendQuery(conn.get(), "SELECT 7") == 1);
  // A "nothing happens" check: there is no event to wait for instead.
  CHECK_FALSE(readable_within(conn.get(), std::chrono::milliseconds(300)));

  cluster.resume_backend(pid);
  const PgResultPtr result(PQgetResult(conn.get()));
  REQUIRE(PQresultStatus(result.get()) == PGRES_TUPLES_OK);
  CHECK(std::string(PQgetvalue(result.get(), 0, 0)) == "7");
  CHECK(PgResultPtr(PQgetResult(conn.get())) == nullptr);
  CHECK(value_of(conn.get(), "SELECT 8") == "8");

  CHECK_THROWS_AS(cluster.pause_backend(0), std::invalid_argument);
  CHECK_THROWS_AS(cluster.pause_backend(-1), std::invalid_argument);
}

TEST_CASE("test cluster: the destructor stops a cluster with paused processes and removes it") {
  std::optional<TestCluster> cluster(std::in_place);
  const std::filesystem::path base_dir = std::filesystem::path(cluster->log_path()).parent_path();
  const std::string conninfo = cluster->conninfo("left_behind");
  const PgConnPtr conn = connect(conninfo);
  REQUIRE(connected(conn));
  cluster->pause_backend(PQbackendPID(conn.get()));
  cluster->pause_backend(cluster->postmaster_pid());
  REQUIRE(std::filesystem::exists(base_dir / "data" / "PG_VERSION"));
  // The server's log outlives the directory through a second link to it (same file system).
  const std::filesystem::path log_kept =
      base_dir.parent_path() / (base_dir.filename().string() + "-server.log");
  std::filesystem::create_hard_link(cluster->log_path(), log_kept);

  cluster.reset();
  // Without SIGCONT first, a paused backend ignores the shutdown: the postmaster gives up on it
  // after 5 s and says so, and a paused postmaster never shuts down (pg_ctl gives up after
  // -t 30). Both are in the server's log, whatever the machine's load; how long the stop took
  // is the scheduler's as much as the destructor's, so it is not the measure.
  const std::string log = [&] {
    std::ifstream in(log_kept);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  std::filesystem::remove(log_kept);
  CHECK(log.find("database system is shut down") != std::string::npos);
  CHECK(log.find("issuing SIGKILL to recalcitrant children") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(base_dir));
  CHECK_FALSE(connected(connect(conninfo)));
}

TEST_CASE("test cluster: two clusters at once are independent") {
  const TestCluster first;
  const TestCluster second;
  CHECK(first.port() != second.port());
  CHECK(first.log_path() != second.log_path());
  CHECK(first.password() != second.password());
  first.execute("CREATE TABLE only_in_first ()");
  CHECK(second.query_value("SELECT to_regclass('only_in_first')::text").empty());
}

TEST_CASE("test cluster: run_process captures output and exit codes") {
  using pgwd::testing::run_checked;
  using pgwd::testing::run_process;
  const auto ok = run_process({"sh", "-c", "echo out; echo err >&2"});
  CHECK(ok.exit_code == 0);
  CHECK(ok.output == "out\nerr\n");
  CHECK(run_process({"sh", "-c", "exit 3"}).exit_code == 3);
  CHECK(run_process({"sh", "-c", "kill -TERM $$"}).exit_code == 128 + 15);
  CHECK(run_process({"/no/such/program"}).exit_code == 127);
  CHECK(run_process({"pwd"}, "/").output == "/\n");
  CHECK_THROWS_WITH_AS(run_checked({"sh", "-c", "echo boom; exit 2"}),
                       "sh -c echo boom; exit 2 failed (exit 2): boom", std::runtime_error);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
