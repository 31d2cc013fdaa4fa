#include <doctest/doctest.h>
#include <spdlog/sinks/null_sink.h>

#include "daemon/effective_config.hpp"
#include "daemon/target_reload.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::daemon;

namespace {

TargetOptions target(const std::string& name, const std::string& dsn = "host=127.0.0.1") {
  TargetOptions t;
  t.name = name;
  t.conninfo = dsn;
  return t;
}

}  // namespace

TEST_CASE("reload plan: removed and added and changed and unchanged targets are told apart") {
  TargetOptions changed = target("b");
  changed.heartbeat = 1s;
  const ReloadPlan plan =
      plan_reload({target("a"), target("b"), target("c")}, {target("a"), changed, target("d")});
  CHECK(plan.remove == std::vector<std::string>{"c"});
  REQUIRE(plan.add.size() == 1);
  CHECK(plan.add[0].name == "d");
  REQUIRE(plan.restart.size() == 1);
  CHECK(plan.restart[0].heartbeat == 1s);
  CHECK(plan.unchanged == std::vector<std::string>{"a"});
}

TEST_CASE(
    "reload steps: removed and restarted targets go in one step and then one per target added") {
  pgwd::testing::FakeLoop loop;
  auto metrics = pgwd::make_series_store();
  Watchdog watchdog(
      loop, WatchdogOptions{.metrics = metrics,
                            .logger = std::make_shared<spdlog::logger>(
                                "silent", std::make_shared<spdlog::sinks::null_sink_mt>())});
  const std::vector<TargetOptions> running = {target("a", "host=127.0.0.1 port=1"),
                                              target("b", "host=127.0.0.1 port=1"),
                                              target("c", "host=127.0.0.1 port=1")};
  for (const TargetOptions& t : running) watchdog.add_target(t);
  const ReloadPlan plan = plan_reload(
      running, {target("a", "host=127.0.0.1 port=1"), target("b", "host=127.0.0.1 port=2"),
                target("d", "host=127.0.0.1 port=1"), target("e", "host=127.0.0.1 port=1")});
  const auto steps = reload_steps(plan, watchdog);
  REQUIRE(steps.size() == 1 + 1 + 2);  // c and b's old half; b again; d; e
  steps[0]();
  CHECK(watchdog.target_names() == std::vector<std::string>{"a"});
  CHECK(pgwd::testing::metric_value(metrics, "pgwatchdog_up", {{"target", "c"}}) == -1);
  CHECK(pgwd::testing::metric_value(metrics, "pgwatchdog_up", {{"target", "a"}}) == 0);
  for (std::size_t i = 1; i < steps.size(); ++i) steps[i]();
  CHECK(watchdog.target_names() == std::vector<std::string>{"a", "b", "d", "e"});
  CHECK(pgwd::testing::metric_value(metrics, "pgwatchdog_connections",
                                    {{"target", "b"}, {"state", "waiting"}}) == 1);
}

TEST_CASE("reload steps: thousands of removals go kRemovalsPerStep to a step, in order") {
  pgwd::testing::FakeLoop loop;
  Watchdog watchdog(
      loop, WatchdogOptions{.logger = std::make_shared<spdlog::logger>(
                                "silent", std::make_shared<spdlog::sinks::null_sink_mt>())});
  std::vector<TargetOptions> running;
  for (int i = 0; i < 2500; ++i) running.push_back(target("t" + std::to_string(i), "host=h"));
  for (const TargetOptions& t : running) watchdog.add_target(t);
  const ReloadPlan plan = plan_reload(running, {running[7]});
  const auto steps = reload_steps(plan, watchdog);
  REQUIRE(steps.size() == 10);  // 2,499 removals: 250 a step, 249 in the last
  steps[0]();
  CHECK(watchdog.target_names().size() == 2250);
  for (std::size_t i = 1; i < steps.size(); ++i) steps[i]();
  CHECK(watchdog.target_names() == std::vector<std::string>{"t7"});
}

TEST_CASE("reload plan: any difference in a target's settings restarts it") {
  TargetOptions dsn = target("a", "host=127.0.0.2");
  TargetOptions channels = target("a");
  channels.listen_channels = {"jobs"};
  CHECK(plan_reload({target("a")}, {dsn}).restart.size() == 1);
  CHECK(plan_reload({target("a")}, {channels}).restart.size() == 1);
  CHECK(plan_reload({target("a")}, {target("a")}).unchanged.size() == 1);
}

TEST_CASE("effective config: --target inherits nothing from nowhere and needs a unique name") {
  CommandLine cli;
  cli.targets = {{"a", "host=127.0.0.1"}, {"b", "host=127.0.0.2"}};
  cli.listen = "127.0.0.1:0";
  cli.log_level = "debug";
  const DaemonConfig config = effective_config(cli);
  REQUIRE(config.targets.size() == 2);
  CHECK(config.targets[1].name == "b");
  CHECK(config.targets[1].probe_timeout == 5s);  // TargetOptions' own default
  CHECK(config.listen == "127.0.0.1:0");
  CHECK(config.log_level == LogLevel::debug);

  cli.targets.push_back({"a", "host=127.0.0.3"});
  CHECK_THROWS_WITH_AS(effective_config(cli),
                       "--target a: a target with this name is already defined", ConfigError);
  CHECK_THROWS_WITH_AS(effective_config(CommandLine{}),
                       "no targets: give --target NAME=DSN, or targets: in the --config file",
                       ConfigError);
}

TEST_CASE("effective config: check-config output shows settings and hides the password") {
  CommandLine cli;
  cli.targets = {{"db", "host=db.internal user=app password=hunter2"}};
  const std::string text = describe(effective_config(cli));
  CHECK(text.find("listen: \"127.0.0.1:10432\"") != std::string::npos);
  CHECK(text.find("  - name: \"db\"") != std::string::npos);
  CHECK(text.find("password='***'") != std::string::npos);
  CHECK(text.find("hunter2") == std::string::npos);
  CHECK(text.find("probe_timeout: 5s") != std::string::npos);
  CHECK(text.find("backoff_initial: 100ms") != std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
