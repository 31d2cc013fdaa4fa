// A SIGHUP that removes many targets at once (docs/design.md §12): each removed target's row of
// series leaves the store, so a scrape running the whole time must never miss a series of a
// target that stays, nor see one of its values move; the removed targets' connections close, the
// staying ones keep theirs.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <latch>
#include <sstream>
#include <thread>
#include <vector>

#include "support/daemon_fixture.hpp"
#include "support/http_client.hpp"
#include "support/poll_deadline.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::testing::at_most_every;

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;

namespace {

/// Targets on a port nobody listens on, idle in backoff after their first attempt (no scout:
/// they wait the hour).
std::string closed_targets(int from, int to) {
  std::string yaml;
  for (int i = from; i < to; ++i)
    yaml += "  - name: c" + std::to_string(i) +
            "\n    dsn: \"host=127.0.0.1 port=1 dbname=x user=y\"\n"
            "    backoff_initial: 1h\n    backoff_max: 2h\n    scout_interval: 0\n";
  return yaml;
}

/// The sample lines of a scrape that name one of the staying targets, sorted.
std::string staying_lines(const std::string& text, int staying_from, int staying_to) {
  std::istringstream lines(text);
  std::vector<std::string> kept;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto at = line.find("target=\"");
    if (at == std::string::npos) continue;
    const std::string target = line.substr(at + 8, line.find('"', at + 8) - at - 8);
    const bool stays = target == "stays" || (target.size() > 1 && target[0] == 'c' &&
                                             std::stoi(target.substr(1)) >= staying_from &&
                                             std::stoi(target.substr(1)) < staying_to);
    if (stays) kept.push_back(line);
  }
  std::sort(kept.begin(), kept.end());
  std::string out;
  for (const std::string& line : kept) out += line + "\n";
  return out;
}

}  // namespace

// The staying target's series are compared line for line before and after: its heartbeat (a
// probe counted every 5 s) would change them while a loaded machine stretches the test past 5 s.
constexpr const char* kSilent = "    heartbeat: 0\n";

TEST_CASE_FIXTURE(
    DaemonFixture,
    "daemon: SIGHUP removing half of 400 targets - a scrape all along misses nothing") {
  constexpr int kTargets = 400;
  write_config("targets:\n" + target_yaml("stays", 1, kSilent) + target_yaml("goes", 1) +
               closed_targets(0, kTargets));
  start_with_config();
  REQUIRE(wait_metric("pgwatchdog_up{target=\"stays\"}", 1, 10s));
  REQUIRE(wait_metric("pgwatchdog_up{target=\"goes\"}", 1, 10s));
  // Every closed-port target has made its attempt and waits an hour: nothing changes now.
  REQUIRE(waiter.run_until(
      [&] {
        return metric("pgwatchdog_connections{state=\"backoff\",target=\"c" +
                      std::to_string(kTargets - 1) + "\"}") == 1;
      },
      20s));
  const auto stays_pids = cluster.backend_pids("stays");
  REQUIRE(stays_pids.size() == 1);
  const std::string expected = staying_lines(scrape(), kTargets / 2, kTargets);
  REQUIRE(!expected.empty());

  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0}, bad{0};
  std::string first_bad;
  // The reload starts after the scraper's first scrape: whatever the scheduler does, the scraper
  // is in its loop while the reload runs.
  std::latch first_scrape(1);
  std::thread scraper([&] {
    for (int after_done = 0; after_done < 3;) {
      const bool was_done = done.load();
      const std::string seen =
          staying_lines(pgwd::testing::http_get("127.0.0.1", metrics_port, "/metrics").body,
                        kTargets / 2, kTargets);
      if (seen != expected && bad++ == 0) first_bad = seen;
      if (scrapes++ == 0) first_scrape.count_down();
      if (was_done) ++after_done;
    }
  });
  first_scrape.wait();
  write_config("targets:\n" + target_yaml("stays", 1, kSilent) +
               closed_targets(kTargets / 2, kTargets));
  daemon->send_signal(SIGHUP);
  const bool reloaded = daemon->wait_for_output(
      "config reloaded: 0 added, " + std::to_string(kTargets / 2 + 1) + " removed", 30s);
  done = true;
  scraper.join();
  REQUIRE(reloaded);
  CHECK(scrapes.load() >= 4);  // one before the reload, three after it
  CHECK_MESSAGE(bad.load() == 0, first_bad.substr(0, 2000));
  const std::string after = scrape();
  CHECK(staying_lines(after, kTargets / 2, kTargets) == expected);
  CHECK(after.find("target=\"c0\"") == std::string::npos);
  CHECK(after.find("target=\"goes\"") == std::string::npos);
  CHECK(waiter.run_until(at_most_every(50ms, [&] { return cluster.backend_pids("goes").empty(); }),
                         5s));
  CHECK(cluster.backend_pids("stays") == stays_pids);  // not reconnected
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
