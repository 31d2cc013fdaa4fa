// The series store under threads (run under ThreadSanitizer in CI, label `thread`): scrapes on
// several threads, through the text writer and the prometheus-cpp collectable, while watchdogs
// on other threads share the store, add and remove targets, and remove half their targets at
// once; while the daemon's reload removes half the targets of another watchdog in its steps, the
// connections closed over later loop passes; and while a loop thread keeps writing its targets'
// series. No series of a target that stays may ever be missing from a scrape, and no counter or
// histogram count of one may ever go backwards.
#include <doctest/doctest.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/target_reload.hpp"
#include "metrics/loop_series.hpp"
#include "metrics/store.hpp"
#include "metrics/target_series.hpp"
#include "pgwd/prometheus_collectable.hpp"
#include "pgwd/watchdog.hpp"
#include "support/fake_loop.hpp"
#include "support/offline_targets.hpp"
#include "support/ticking_loop.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;

using pgwd::testing::offline_target;
using pgwd::testing::silent_logger;
using pgwd::testing::TickingLoop;
using pgwd::testing::unresolved_target;

namespace {

constexpr int kWatchdogs = 3;
constexpr int kStayingPerWatchdog = 4;
constexpr int kChurnRounds = 25;
constexpr int kChurnTargets = 40;   // added each round, then half removed at once, then the rest
constexpr int kWrittenTargets = 8;  // written all along by the loop thread
constexpr int kScrapers = 3;
// The reloaded watchdog's targets: the reload removes every other one (more than
// kRemovalsPerStep: the removal takes several steps) and adds kReloadAdded.
constexpr int kReloadTargets = 600;
constexpr int kReloadAdded = 50;

/// One scrape: each sample line's series (name and labels) and value.
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

bool staying(const std::string& series) {
  // stay-reload-*: the targets of the reloaded watchdog that the reload keeps.
  return series.find("target=\"stay-") != std::string::npos ||
         series.find("target=\"written-") != std::string::npos ||
         series.find("loop=\"writer\"") != std::string::npos;
}

/// A value that may only grow: a counter, or a histogram's count, sum or bucket.
bool monotonic(const std::string& series) {
  const std::string name = series.substr(0, series.find('{'));
  return name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_bucket");
}

struct Scraped {
  int scrapes = 0;
  std::map<std::string, double> last;  ///< the scrape after every writer was done
};

/// Checks each scrape against the one before: every staying series is still there, and no
/// monotonic one went back.
Scraped keep_scraping(const std::shared_ptr<pgwd::SeriesStore>& store, bool through_prometheus_cpp,
                      const std::atomic<bool>& writers_done, std::latch& first_scrape_done) {
  const auto collectable = pgwd::prometheus_collectable(store);
  std::map<std::string, double> previous;
  int scrapes = 0;
  // One more after the writers are done, so that each scraper sees the last of their work.
  for (bool last = false; !last;) {
    last = writers_done.load();
    const std::string text = through_prometheus_cpp
                                 ? prometheus::TextSerializer().Serialize(collectable->Collect())
                                 : store->text();
    const auto now = parse(text);
    for (const auto& [series, value] : previous) {
      if (!staying(series)) continue;
      const auto found = now.find(series);
      if (found == now.end()) {
        FAIL_CHECK("a staying series went missing: " << series);
        continue;
      }
      if (monotonic(series) && found->second < value)
        FAIL_CHECK("went backwards: " << series << " " << value << " -> " << found->second);
    }
    previous = now;
    if (scrapes++ == 0) first_scrape_done.count_down();
  }
  return {scrapes, previous};
}

}  // namespace

TEST_SUITE("thread") {
  TEST_CASE(
      "series store: scrapes on several threads never miss a staying series nor see one go back") {
    const auto store = pgwd::make_series_store();
    pgwd::Store& rows = pgwd::Store::of(*store);
    std::atomic<bool> writers_done{false};
    // Every staying series exists before the first scrape: the writers say so here.
    std::latch ready(kWatchdogs + 2);
    // The writers change nothing until every scraper has scraped once: however the machine
    // schedules the threads, each scraper sees the staying series before the churn and again
    // after it, and the scrapes in between race the writers as much as the scheduler lets them.
    std::latch first_scrapes(kScrapers);
    const auto writer_ready = [&] {
      ready.count_down();
      first_scrapes.wait();
    };
    std::atomic<int> writers_left{kWatchdogs + 2};
    // The writers' staying series go only once every scraper is done.
    std::latch scraped(kScrapers);
    const auto writer_finished = [&] {
      if (writers_left.fetch_sub(1) == 1) writers_done = true;
      scraped.wait();
    };

    std::vector<std::thread> threads;
    // Watchdogs, each on a loop of its own thread (a fake one: nothing connects), sharing the
    // store: their staying targets, then rounds of targets added and removed.
    for (int w = 0; w < kWatchdogs; ++w)
      threads.emplace_back([&, w] {
        pgwd::testing::FakeLoop loop;
        pgwd::Watchdog watchdog(loop,
                                pgwd::WatchdogOptions{.metrics = store, .logger = silent_logger()});
        for (int i = 0; i < kStayingPerWatchdog; ++i)
          watchdog.add_target(
              offline_target("stay-" + std::to_string(w) + "-" + std::to_string(i)));
        writer_ready();
        for (int round = 0; round < kChurnRounds; ++round) {
          std::vector<std::string> added;
          for (int i = 0; i < kChurnTargets; ++i) {
            added.push_back("churn-" + std::to_string(w) + "-" + std::to_string(i));
            watchdog.add_target(offline_target(added.back()));
          }
          std::vector<std::string> half;
          for (std::size_t i = 0; i < added.size(); i += 2) half.push_back(added[i]);
          CHECK(watchdog.remove_targets(half) == half.size());  // a reload's removal
          for (std::size_t i = 1; i < added.size(); i += 2) CHECK(watchdog.remove_target(added[i]));
        }
        writer_finished();
      });
    // A watchdog whose loop runs, and the daemon's reload on it: half its targets removed in the
    // reload's steps (kRemovalsPerStep a step), the connections of each step closed over later
    // loop passes, and new targets added, one step a loop pass.
    threads.emplace_back([&] {
      // Its clock moves 50 µs at each reading, as a busy loop's does: remove_targets then closes
      // a few targets in the call and leaves the rest to later passes (advance() runs them).
      pgwd::testing::FakeLoop fake;
      TickingLoop loop(fake, std::chrono::microseconds(50));
      pgwd::Watchdog watchdog(loop,
                              pgwd::WatchdogOptions{.metrics = store, .logger = silent_logger()});
      std::vector<pgwd::TargetOptions> running;
      std::vector<pgwd::TargetOptions> wanted;
      for (int i = 0; i < kReloadTargets; ++i) {
        const bool stays = i % 2 == 1;
        running.push_back(
            unresolved_target((stays ? "stay-reload-" : "reloaded-") + std::to_string(i)));
        if (stays) wanted.push_back(running.back());
        watchdog.add_target(running.back());
      }
      for (int i = 0; i < kReloadAdded; ++i)
        wanted.push_back(unresolved_target("added-" + std::to_string(i)));
      fake.advance(0ms);  // the targets start: each waits for its lookup
      writer_ready();
      const pgwd::daemon::ReloadPlan plan = pgwd::daemon::plan_reload(running, wanted);
      CHECK(plan.remove.size() == std::size_t{kReloadTargets / 2});
      const auto steps = pgwd::daemon::reload_steps(plan, watchdog);
      REQUIRE(steps.size() > 2);
      bool closed_later = false;  // a step left connections for a later pass to close
      for (const auto& step : steps) {
        step();
        closed_later = closed_later || watchdog.targets_closing() > 0;
        fake.advance(0ms);  // a loop pass: the closing goes on
      }
      CHECK(closed_later);
      CHECK(watchdog.targets_closing() == 0);
      CHECK(watchdog.target_names().size() == std::size_t{kReloadTargets / 2 + kReloadAdded});
      writer_finished();
    });
    // A loop writing its targets' series all along, as a watchdog's loop does.
    threads.emplace_back([&] {
      pgwd::LoopSeries loop(rows, "writer", true);
      std::vector<std::unique_ptr<pgwd::TargetSeries>> targets;
      for (int i = 0; i < kWrittenTargets; ++i)
        targets.push_back(std::make_unique<pgwd::TargetSeries>(
            rows, "written-" + std::to_string(i), i % 2 ? loop.shared_histograms() : nullptr));
      writer_ready();
      for (int round = 0; round < 400; ++round) {
        for (auto& t : targets) {
          t->connection_moved(std::nullopt, pgwd::ConnectionState::healthy);
          t->probed(pgwd::ProbeResult::ok, std::chrono::microseconds(100 + round));
          t->disconnected(pgwd::Cause::closed);
          t->connection_moved(pgwd::ConnectionState::healthy, std::nullopt);
          t->outage(std::chrono::milliseconds(round));
          t->connect_failed(round % 50 == 0 ? pgwd::Cause::dns : pgwd::Cause::connect_failed);
        }
        loop.timer_late(std::chrono::microseconds(round));
        loop.slow_callback(pgwd::CallbackPhase::timer);
      }
      writer_finished();
    });
    std::vector<Scraped> scraped_by(kScrapers);
    for (int s = 0; s < kScrapers; ++s)
      threads.emplace_back([&, s] {
        ready.wait();
        scraped_by[s] = keep_scraping(store, s == 0, writers_done, first_scrapes);
        scraped.count_down();
      });
    for (auto& t : threads) t.join();

    for (const Scraped& scraped_once : scraped_by) {
      // One before the writers start, one after they are done (the latches see to that).
      CHECK(scraped_once.scrapes >= 2);
      // The last scrape saw the writers' work whole: no churned target left, every write counted.
      const auto& last = scraped_once.last;
      for (const auto& [series, value] : last) {
        CHECK(series.find("churn-") == std::string::npos);
        CHECK(series.find("reloaded-") == std::string::npos);
      }
      CHECK(last.contains("pgwatchdog_up{target=\"stay-reload-1\"}"));
      CHECK(last.contains("pgwatchdog_up{target=\"added-0\"}"));
      for (int w = 0; w < kWatchdogs; ++w)
        CHECK(last.contains("pgwatchdog_up{target=\"stay-" + std::to_string(w) + "-0\"}"));
      const std::string closed =
          "pgwatchdog_disconnects_total{cause=\"closed\",target=\"written-3\"}";
      REQUIRE(last.contains(closed));
      CHECK(last.at(closed) == 400);
      CHECK(last.at("pgwatchdog_probe_duration_seconds_count{loop=\"writer\"}") == 400 * 4);
    }
    // Every writer is gone with its series: only the store's build_info is left.
    CHECK(parse(store->text()).size() == 1);
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
