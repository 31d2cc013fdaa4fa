#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "support/daemon_fixture.hpp"
#include "support/fake_patroni.hpp"
#include "support/poll_deadline.hpp"
#include "support/sched_stat.hpp"
#include "support/test_cluster.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd::testing;

namespace {

constexpr auto kDiscovery = 500ms;

/// The daemon watching a plain target on the fixture's cluster and a Patroni cluster "demo" whose
/// REST API is a FakePatroni listing real PostgreSQL clusters as its members: `pg1` is the
/// fixture's cluster, `pg2` a second one. Both are primaries of their own, which is what a
/// split brain looks like to a client.
struct PatroniFixture : DaemonFixture {
  TestCluster second;
  FakePatroni patroni;
  int dead_port = free_tcp_port();  // a REST endpoint nobody listens on
  std::filesystem::path password_path = config_path.parent_path() / "patroni-password";

  PatroniFixture() {
    // One password for every member, as in a Patroni cluster (one role, replicated).
    second.execute("ALTER ROLE watchdog PASSWORD '" + cluster.password() + "'");
    std::ofstream(password_path) << cluster.password() << "\n";
  }

  FakePatroni::Member pg1(std::string role = "leader") const {
    return {"pg1", "127.0.0.1", cluster.port(), role};
  }
  FakePatroni::Member pg2(std::string name = "pg2") const {
    return {name, "127.0.0.1", second.port(), "replica"};
  }

  std::string config_yaml(const std::string& discovery_interval = "500ms") const {
    return "targets:\n" + target_yaml("plain", 1) +
           "  - name: demo\n"
           "    patroni: [\"http://127.0.0.1:" +
           std::to_string(dead_port) + "\", \"" + patroni.url() +
           "\"]\n"
           "    dsn: \"user=watchdog dbname=postgres application_name=pgwd-patroni\"\n"
           "    password_file: " +
           password_path.string() +
           "\n"
           "    discovery_interval: " +
           discovery_interval +
           "\n"
           "  - name: broken\n"
           "    patroni: [\"http://127.0.0.1:" +
           std::to_string(dead_port) +
           "\"]\n"
           "    discovery_interval: 500ms\n";
  }

  void start_daemon() {
    write_config(config_yaml());
    start_with_config("info");
  }

  std::string up(const std::string& target) const {
    return "pgwatchdog_up{target=\"" + target + "\"}";
  }
  bool wait_for(const std::function<bool(const std::string&)>& holds,
                std::chrono::milliseconds timeout) {
    return waiter.run_until([&] { return holds(scrape()); }, timeout);
  }
};

/// What the machine's scheduler took from a wall-clock interval of a discovery test: the time
/// the daemon's threads (its loop, its HTTP server and fetches) and this test process's (the
/// scrapes, the fake REST API's thread) waited for a CPU since construction (support/
/// sched_stat.hpp), and that of new backends the change brought (since their fork). Over-counts
/// where threads waited at once; the bound it relaxes is generous either way.
struct MachineWait {
  explicit MachineWait(const PatroniFixture& f) : daemon(f.daemon->pid()), test(::getpid()) {}
  void check_within(std::chrono::steady_clock::duration took, const char* what,
                    const std::vector<int>& new_backends = {}) const {
    auto waited = daemon.waited() + test.waited();
    for (const int pid : new_backends) waited += lifetime_cpu_wait(pid);
    const auto ms = [](auto d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    MESSAGE("member ", std::string(what), ": seen in a scrape after ", ms(took),
            " ms; the daemon, the test and new backends waited ", ms(waited),
            " ms for a CPU: ", ms(took - waited), " ms less those waits");
    CHECK(took - waited < kDiscovery + 2500ms);
  }
  /// The readings of the REST API the test may count between a change and the scrape that shows
  /// it: the first one that started after the change, the one in flight while it was made, and
  /// one more for each discovery period the daemon and the test spent waiting for a CPU (the
  /// reader runs on its own period meanwhile; the scrape that would show the change does not).
  int readings_allowed() const {
    return 2 + static_cast<int>((daemon.waited() + test.waited()) / kDiscovery);
  }
  ProcessCpuWaitSince daemon;
  ProcessCpuWaitSince test;
};

}  // namespace

TEST_CASE("daemon: a Patroni cluster's members are watched as targets and follow the cluster") {
  PatroniFixture f;
  f.patroni.serve_members({f.pg1(), f.pg2()});
  f.start_daemon();

  // Members appear as targets of their own, up, with the cluster's connection options and the
  // password from its password_file; the leader is exported.
  REQUIRE(f.wait_metric(f.up("demo/pg1"), 1, 15s));
  REQUIRE(f.wait_metric(f.up("demo/pg2"), 1, 15s));
  const std::string text = f.scrape();
  CHECK(DaemonFixture::sample(text, "pgwatchdog_patroni_members{cluster=\"demo\"}") == 2);
  CHECK(DaemonFixture::sample(text, "pgwatchdog_patroni_leader{cluster=\"demo\",member=\"pg1\"}") ==
        1);
  CHECK(DaemonFixture::sample(text, "pgwatchdog_patroni_discovery_up{cluster=\"demo\"}") == 1);
  CHECK(f.cluster.backend_pids("pgwd-patroni").size() == 1);
  CHECK(f.second.backend_pids("pgwd-patroni").size() == 1);
  // Role-aware: each member's target answers the proxy checks like any target.
  CHECK(f.waiter.run_until(
      [&] {
        return http_get("127.0.0.1", f.metrics_port, "/targets/demo/pg1/primary").status == 200;
      },
      5s));

  // Both real servers are primaries: the split-brain alarm, as a metric and an error line.
  REQUIRE(f.wait_metric("pgwatchdog_patroni_primaries{cluster=\"demo\"}", 2, 10s));
  CHECK(f.daemon->wait_for_output("2 members answer as primary at once: pg1, pg2", 5s));

  // The first REST endpoint refuses every reading: counted and told, and the second answers.
  CHECK(f.daemon->output().find(
            "cannot read the members from http://127.0.0.1:" + std::to_string(f.dead_port) +
            "/cluster: unreachable") != std::string::npos);
  CHECK(f.metric("pgwatchdog_patroni_discovery_errors_total{cluster=\"demo\",reason=\""
                 "unreachable\"}") >= 1);
  // A cluster whose only endpoint is unreachable watches nothing and says so; the rest works.
  CHECK(f.metric("pgwatchdog_patroni_discovery_up{cluster=\"broken\"}") == 0);
  CHECK(f.metric("pgwatchdog_patroni_members{cluster=\"broken\"}") == 0);
  CHECK(f.metric(f.up("plain")) == 1);

  SUBCASE("a member removed leaves the metrics within one discovery period") {
    const int asked_before = f.patroni.requests();
    const MachineWait machine(f);
    const auto changed = std::chrono::steady_clock::now();
    f.patroni.serve_members({f.pg1()});
    REQUIRE(f.wait_for(
        [&](const std::string& t) { return !DaemonFixture::sample(t, f.up("demo/pg2")); }, 10s));
    const auto took = std::chrono::steady_clock::now() - changed;
    // pgwatchdog's decision: gone at the first reading that started after the change (the one
    // in flight while it was made may still have read the old list).
    CHECK(f.patroni.requests() - asked_before <= machine.readings_allowed());
    // The wall time, less the machine's share: "within one discovery period", with room for
    // the reading in flight and the test's own scrapes.
    machine.check_within(took, "removed");
    // Set in the same loop callback as the target went, which a scrape may fall between.
    CHECK(f.wait_metric("pgwatchdog_patroni_members{cluster=\"demo\"}", 1, 2s));
    CHECK(f.metric(f.up("demo/pg1")) == 1);
    // Each look is an admin connection: paced; the deadline only guards against a hang.
    const auto closed = [&] { return f.second.backend_pids("pgwd-patroni").empty(); };
    REQUIRE(f.waiter.run_until(pgwd::testing::at_most_every(50ms, closed), 30s));
    // One primary again.
    REQUIRE(f.wait_metric("pgwatchdog_patroni_primaries{cluster=\"demo\"}", 1, 5s));
    CHECK(f.daemon->wait_for_output("1 member(s) answer as primary now", 5s));
  }
  SUBCASE("a member added, and one renamed, appear within one discovery period") {
    f.patroni.serve_members({f.pg1()});
    REQUIRE(f.wait_for(
        [&](const std::string& t) { return !DaemonFixture::sample(t, f.up("demo/pg2")); }, 10s));
    REQUIRE(f.wait_metric("pgwatchdog_patroni_members{cluster=\"demo\"}", 1, 5s));
    const int asked_before = f.patroni.requests();
    const MachineWait machine(f);
    const auto added = std::chrono::steady_clock::now();
    f.patroni.serve_members({f.pg1(), f.pg2("node-2")});
    // As above: added at the first reading after the change (or the one in flight after it).
    // Counted when the member is in the cluster's list, before its connection: the readings go
    // on at their own period while the new backend forks and logs in.
    REQUIRE(f.wait_metric("pgwatchdog_patroni_members{cluster=\"demo\"}", 2, 10s));
    CHECK(f.patroni.requests() - asked_before <= machine.readings_allowed());
    // Then connected (the new backend's fork and start are the server's: its wait for a CPU
    // counts with the machine's).
    REQUIRE(f.wait_metric(f.up("demo/node-2"), 1, 10s));
    const auto took = std::chrono::steady_clock::now() - added;
    machine.check_within(took, "added", f.second.backend_pids("pgwd-patroni"));
    // Renamed back: the old name goes, the new one comes.
    f.patroni.serve_members({f.pg1(), f.pg2("pg2")});
    REQUIRE(f.wait_metric(f.up("demo/pg2"), 1, 10s));
    CHECK_FALSE(f.metric(f.up("demo/node-2")).has_value());
  }
  SUBCASE("a malformed answer or an error status is a clear error and changes nothing") {
    f.patroni.serve("<html><body>502 Bad Gateway</body></html>");
    REQUIRE(f.wait_metric("pgwatchdog_patroni_discovery_up{cluster=\"demo\"}", 0, 10s));
    CHECK(f.daemon->wait_for_output("/cluster: malformed: the answer is not JSON", 5s));
    CHECK(f.metric("pgwatchdog_patroni_discovery_errors_total{cluster=\"demo\",reason="
                   "\"malformed\"}") >= 1);
    f.patroni.serve(R"({"state": "stopped"})", 503);
    CHECK(f.daemon->wait_for_output("http_status: HTTP status 503 (expected 200)", 10s));
    // Every target kept watching meanwhile.
    CHECK(f.metric(f.up("demo/pg1")) == 1);
    CHECK(f.metric(f.up("demo/pg2")) == 1);
    CHECK(f.metric(f.up("plain")) == 1);
    f.patroni.serve_members({f.pg1(), f.pg2()});
    REQUIRE(f.wait_metric("pgwatchdog_patroni_discovery_up{cluster=\"demo\"}", 1, 10s));
    CHECK(f.daemon->wait_for_output("members read again", 5s));
  }

  // The password never shows, whatever happened.
  CHECK(f.daemon->output().find(f.cluster.password()) == std::string::npos);
  CHECK(f.scrape().find(f.cluster.password()) == std::string::npos);
}

TEST_CASE(
    "daemon: a SIGHUP keeps an unchanged Patroni cluster's members, and restarts a changed one") {
  PatroniFixture f;
  f.patroni.serve_members({f.pg1(), f.pg2()});
  f.start_daemon();
  REQUIRE(f.wait_metric(f.up("demo/pg1"), 1, 15s));
  REQUIRE(f.wait_metric(f.up("demo/pg2"), 1, 15s));
  const std::vector<int> pids = f.cluster.backend_pids("pgwd-patroni");
  REQUIRE(pids.size() == 1);

  f.daemon->send_signal(SIGHUP);  // the same file
  REQUIRE(f.daemon->wait_for_output("config reloaded", 10s));
  const int asked = f.patroni.requests();
  REQUIRE(f.waiter.run_until([&] { return f.patroni.requests() >= asked + 2; }, 10s));
  CHECK(f.cluster.backend_pids("pgwd-patroni") == pids);  // not reconnected
  CHECK(f.metric(f.up("demo/pg1")) == 1);
  // The status board still lists the members after the reload gave it the file's targets.
  CHECK(http_get("127.0.0.1", f.metrics_port, "/targets/demo/pg2/up").status == 200);

  // A changed cluster starts again: its members are let go and read anew.
  f.write_config(f.config_yaml("300ms"));
  f.daemon->send_signal(SIGHUP);
  REQUIRE(f.waiter.run_until(
      [&] {
        const std::vector<int> now = f.cluster.backend_pids("pgwd-patroni");
        return now.size() == 1 && now != pids;
      },
      15s));
  REQUIRE(f.wait_metric(f.up("demo/pg1"), 1, 10s));
  REQUIRE(f.wait_metric(f.up("demo/pg2"), 1, 10s));
  CHECK(f.metric("pgwatchdog_patroni_members{cluster=\"demo\"}") == 2);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
