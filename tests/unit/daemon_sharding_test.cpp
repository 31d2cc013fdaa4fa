// Sharding targets over replicas: rendezvous hashing with XXH64, the flags, the host name.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "daemon/effective_config.hpp"
#include "daemon/sharding.hpp"
#include "daemon/target_reload.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd;
using namespace pgwd::daemon;

namespace {

std::vector<std::string> target_names(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back("db-" + std::to_string(i) + ".prod");
  return names;
}

std::string flag_error(const std::optional<std::string>& shard,
                       const std::optional<std::string>& total,
                       const std::string& hostname = "pgwatchdog-1") {
  try {
    (void)parse_shard_flags(shard, total, [&] { return hostname; });
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// A config file of `count` targets, and the command line that reads it as one shard.
class ShardedConfig {
 public:
  explicit ShardedConfig(int count)
      : path_(std::filesystem::temp_directory_path() /
              ("pgwd_sharding_test_" + std::to_string(getpid()) + ".yaml")) {
    write(count);
  }
  ~ShardedConfig() { std::filesystem::remove(path_); }
  ShardedConfig(const ShardedConfig&) = delete;
  ShardedConfig& operator=(const ShardedConfig&) = delete;

  void write(int count) const {
    std::ofstream file(path_, std::ios::trunc);
    file << "targets:\n";
    for (const std::string& name : target_names(count))
      file << "  - name: " << name << "\n    dsn: host=h\n";
  }
  DaemonConfig load(unsigned shard, unsigned total) const {
    CommandLine cli;
    cli.config_path = path_.string();
    cli.shard = std::to_string(shard);
    cli.total_shards = std::to_string(total);
    return effective_config(cli);
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace

TEST_CASE("sharding: the weight is XXH64 of the name seeded with the shard, a fixed function") {
  // XXH64's published test vectors (xxhash.h's sanity checks): a build on any machine or version
  // that agrees on these assigns every target to the same shard.
  CHECK(rendezvous_weight("", 0) == 0xEF46DB3751D8E999ULL);
  CHECK(rendezvous_weight("a", 0) == 0xD24EC4F1A98C6E5BULL);
  CHECK(rendezvous_weight("abc", 0) == 0x44BC2CF5AD770999ULL);
  // Pinned here so that a change of algorithm cannot slip in unnoticed.
  CHECK(shard_of("primary", 1) == 0);
  CHECK(shard_of("db-0.prod", 1) == 0);
}

TEST_CASE("sharding: for N = 1..8 the shards partition 1000 targets exactly and evenly") {
  const std::vector<std::string> names = target_names(1000);
  for (unsigned total = 1; total <= 8; ++total) {
    CAPTURE(total);
    std::vector<std::set<std::string>> shards(total);
    for (const std::string& name : names) {
      const unsigned shard = shard_of(name, total);
      REQUIRE(shard < total);
      shards[shard].insert(name);
    }
    std::set<std::string> all;
    std::size_t sum = 0;
    for (const auto& shard : shards) {
      sum += shard.size();
      all.insert(shard.begin(), shard.end());
      // Even enough to be useful: within 30% of the fair share (binomial, 1000 names).
      CHECK(static_cast<double>(shard.size()) > 0.7 * 1000.0 / total);
      CHECK(static_cast<double>(shard.size()) < 1.3 * 1000.0 / total);
    }
    CHECK(sum == names.size());  // no target twice
    CHECK(all.size() == names.size());  // none missing
  }
}

TEST_CASE("sharding: going from N to N+1 shards moves at most 1/(N+1) + 5% of the targets") {
  const std::vector<std::string> names = target_names(1000);
  for (unsigned total = 1; total <= 8; ++total) {
    CAPTURE(total);
    std::size_t moved = 0;
    for (const std::string& name : names) {
      const unsigned before = shard_of(name, total), after = shard_of(name, total + 1);
      if (before != after) {
        ++moved;
        CHECK(after == total);  // a target only ever moves to the new shard
      }
    }
    const double share = static_cast<double>(moved) / static_cast<double>(names.size());
    MESSAGE(total, " -> ", total + 1, " shards: ", moved, " of 1000 targets moved");
    CHECK(share <= 1.0 / (total + 1) + 0.05);
    CHECK(moved > 0);
  }
}

TEST_CASE("sharding: every shard of the real loader validates all targets, keeps only its own") {
  const ShardedConfig file(100);
  std::set<std::string> seen;
  for (unsigned shard = 0; shard < 3; ++shard) {
    const DaemonConfig config = file.load(shard, 3);
    CHECK(config.shard == Shard{shard, 3});
    CHECK(config.targets_in_all_shards == 100);
    for (const TargetOptions& t : config.targets) {
      CHECK(shard_of(t.name, 3) == shard);
      CHECK(seen.insert(t.name).second);
    }
    const std::string printed = to_yaml(config);
    CHECK(printed.starts_with("# shard " + std::to_string(shard) + " of --total-shards 3: " +
                              std::to_string(config.targets.size()) + " of the 100 targets\n"));
  }
  CHECK(seen.size() == 100);

  // A duplicate name or a bad target fails on every shard, whichever shard it hashes to.
  {
    std::ofstream out(file.path(), std::ios::app);
    out << "  - name: db-7.prod\n    dsn: host=h\n";
  }
  for (unsigned shard = 0; shard < 3; ++shard)
    CHECK_THROWS_WITH_AS(file.load(shard, 3),
                         (file.path() + ":202: target 'db-7.prod' is defined twice (first at "
                                        "line 16)")
                             .c_str(),
                         ConfigError);
}

TEST_CASE("sharding: a reload that adds targets starts each on its own shard only") {
  const ShardedConfig file(50);
  std::vector<DaemonConfig> before;
  for (unsigned shard = 0; shard < 4; ++shard) before.push_back(file.load(shard, 4));
  file.write(80);
  std::set<std::string> added;
  for (unsigned shard = 0; shard < 4; ++shard) {
    const DaemonConfig after = file.load(shard, 4);
    const ReloadPlan plan = plan_reload(before[shard].targets, after.targets);
    CHECK(plan.remove.empty());
    CHECK(plan.restart.empty());
    CHECK(plan.unchanged.size() == before[shard].targets.size());
    for (const TargetOptions& t : plan.add) {
      CHECK(shard_of(t.name, 4) == shard);
      CHECK(added.insert(t.name).second);
    }
  }
  CHECK(added.size() == 30);  // each new target started by exactly one replica
}

TEST_CASE("sharding: the ordinal at the end of a StatefulSet pod's host name") {
  CHECK(ordinal_of_hostname("pgwatchdog-0") == 0u);
  CHECK(ordinal_of_hostname("pgwatchdog-12") == 12u);
  CHECK(ordinal_of_hostname("my-watch-dog-3") == 3u);
  CHECK(ordinal_of_hostname("pgwatchdog-2.pgwatchdog.monitoring.svc.cluster.local") == 2u);
  for (const char* name : {"pgwatchdog", "pgwatchdog-", "pgwatchdog-x", "pgwatchdog-1a",
                           "pgwatchdog3", "", "host.pgwatchdog-1", "pgwatchdog-+1"}) {
    CAPTURE(name);
    CHECK_FALSE(ordinal_of_hostname(name).has_value());
  }
}

TEST_CASE("sharding: the flags, and every bad value names its flag") {
  CHECK_FALSE(parse_shard_flags(std::nullopt, std::nullopt).has_value());
  CHECK(parse_shard_flags("2", "3") == Shard{2, 3});
  CHECK(parse_shard_flags("0", "1") == Shard{0, 1});
  CHECK(parse_shard_flags("auto", "4", [] { return std::string("pgwatchdog-3"); }) ==
        Shard{3, 4});
  CHECK(flag_error("3", "3") == "--shard: 3 is not below --total-shards 3 (shards are 0 to 2)");
  CHECK(flag_error("0", "0") == "--total-shards: expected a number from 1 to 1000, got '0'");
  CHECK(flag_error("0", "1001") == "--total-shards: expected a number from 1 to 1000, got '1001'");
  CHECK(flag_error("0", "two") == "--total-shards: expected a number from 1 to 1000, got 'two'");
  CHECK(flag_error("-1", "2") ==
        "--shard: expected a shard number (0, 1, ...) or 'auto', got '-1'");
  CHECK(flag_error("1.0", "2") ==
        "--shard: expected a shard number (0, 1, ...) or 'auto', got '1.0'");
  CHECK(flag_error("1", std::nullopt) == "--shard needs --total-shards N (the number of replicas)");
  CHECK(flag_error(std::nullopt, "2") ==
        "--total-shards needs --shard I (0-based) or --shard auto");
  CHECK(flag_error("auto", "2", "watchdog") ==
        "--shard auto: the host name 'watchdog' does not end in -<ordinal> (as a StatefulSet's "
        "pods do: pgwatchdog-0); give --shard I instead");
  CHECK(flag_error("auto", "2", "pgwatchdog-2") ==
        "--shard auto: the host name 'pgwatchdog-2' gives shard 2, but --total-shards is 2 "
        "(shards are 0 to 1)");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
