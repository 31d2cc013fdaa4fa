// End-to-end: replicas that share one config file each watch only their shard's targets.
#include <doctest/doctest.h>

#include <csignal>
#include <set>
#include <sstream>

#include "support/daemon_fixture.hpp"
#include "support/subprocess.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;

namespace {

std::string up(const std::string& target) { return "pgwatchdog_up{target=\"" + target + "\"}"; }

// The target names --check-config prints (`  - name: "x"`), as the given shard.
std::set<std::string> names_of_shard(const std::string& config, const std::string& hostname,
                                     const std::string& shard) {
  const auto check = pgwd::testing::run_process({"env", "PGWATCHDOG_HOSTNAME=" + hostname,
                                                 PGWD_DAEMON_BINARY, "--config", config,
                                                 "--check-config", "--shard", shard,
                                                 "--total-shards", "2", "--listen", "127.0.0.1:0"});
  REQUIRE_MESSAGE(check.exit_code == 0, check.output);
  std::set<std::string> names;
  std::istringstream lines(check.output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("  - name: \"", 0) == 0) names.insert(line.substr(11, line.size() - 12));
  return names;
}

}  // namespace

TEST_CASE_FIXTURE(DaemonFixture,
                  "sharding: --shard auto watches only its shard's targets, also after SIGHUP") {
  const auto config_with = [&](int count) {
    std::string yaml = "targets:\n";
    for (int i = 0; i < count; ++i) yaml += target_yaml("t" + std::to_string(i), 1);
    return yaml;
  };
  write_config(config_with(8));
  const std::set<std::string> mine = names_of_shard(config_path.string(), "pgwatchdog-1", "auto");
  const std::set<std::string> other = names_of_shard(config_path.string(), "x", "0");
  std::set<std::string> all = mine;
  all.insert(other.begin(), other.end());
  CHECK(all.size() == 8);  // the two shards partition the targets
  CHECK(mine.size() + other.size() == 8);
  CHECK_FALSE(mine.empty());
  CHECK_FALSE(other.empty());

  daemon.emplace(PGWD_DAEMON_BINARY,
                 std::vector<std::string>{"--config", config_path.string(), "--listen", listen(),
                                          "--shard", "auto", "--total-shards", "2"},
                 std::map<std::string, std::string>{{"PGWATCHDOG_HOSTNAME", "pgwatchdog-1"}});
  REQUIRE(daemon->wait_for_output("serving metrics", 10s));
  CHECK(daemon->output().find("shard 1 of 2: watching " + std::to_string(mine.size()) +
                              " of the config's 8 targets") != std::string::npos);
  const std::string text = scrape();
  CHECK(sample(text, "pgwatchdog_shard_info{shard=\"1\",total_shards=\"2\"}") == 1);
  CHECK(sample(text, "pgwatchdog_shard_targets") == static_cast<double>(mine.size()));
  for (const std::string& name : mine) {
    CAPTURE(name);
    CHECK(wait_metric(up(name), 1, 10s));
  }
  for (const std::string& name : other) {
    CAPTURE(name);
    CHECK_FALSE(sample(text, up(name)).has_value());
    CHECK(cluster.backend_pids(name).empty());
  }

  // Targets added on SIGHUP start on their shard only.
  write_config(config_with(16));
  const std::set<std::string> mine_after =
      names_of_shard(config_path.string(), "pgwatchdog-1", "auto");
  for (const std::string& name : mine) CHECK(mine_after.count(name) == 1);  // nothing moved
  daemon->send_signal(SIGHUP);
  REQUIRE(daemon->wait_for_output(std::to_string(mine_after.size() - mine.size()) +
                                      " added, 0 removed, 0 restarted, " +
                                      std::to_string(mine.size()) + " unchanged",
                                  5s));
  CHECK(wait_metric("pgwatchdog_shard_targets", static_cast<double>(mine_after.size()), 5s));
  for (int i = 0; i < 16; ++i) {
    const std::string name = "t" + std::to_string(i);
    CAPTURE(name);
    if (mine_after.count(name))
      CHECK(wait_metric(up(name), 1, 10s));
    else
      CHECK_FALSE(metric(up(name)).has_value());
  }
}

TEST_CASE_FIXTURE(DaemonFixture, "sharding: without the flags the process is shard 0 of 1") {
  start({"--target", "solo=" + cluster.conninfo("solo"), "--listen", listen()});
  const std::string text = scrape();
  CHECK(sample(text, "pgwatchdog_shard_info{shard=\"0\",total_shards=\"1\"}") == 1);
  CHECK(sample(text, "pgwatchdog_shard_targets") == 1);
  CHECK(sample(text, "pgwatchdog_log_messages_dropped_total") == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
