#include "pgwd/watchdog.hpp"

#include <fmt/chrono.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <iterator>
#include <list>
#include <optional>
#include <unordered_map>

#include "event/guarded_loop.hpp"
#include "fronted_targets.hpp"
#include "health/attempt_gate.hpp"
#include "health/random.hpp"
#include "lending/lending_desk.hpp"
#include "lending/lending_ledger.hpp"
#include "metrics/loop_series.hpp"
#include "metrics/store.hpp"
#include "pg/connector_pool.hpp"
#include "pg/loop_connector.hpp"
#include "pg/session_opener.hpp"
#include "pgwd/adapters/libevent.hpp"
#include "target.hpp"
#include "target_settings.hpp"
#include "watchdog_internals.hpp"

namespace pgwd {
namespace {

std::unique_ptr<Store::Claim> claim_name(Store& store, const std::string& wanted) {
  auto claim = store.claim_watchdog(wanted);
  if (!claim)
    throw InvalidOptions("name: another Watchdog on the same metrics store is already named '" +
                         wanted + "'");
  return claim;
}

std::unique_ptr<Resolver> make_resolver(Loop& loop, const std::vector<std::string>& nameservers) {
  try {
    return loop.make_resolver(nameservers);
  } catch (const std::invalid_argument& e) {
    throw InvalidOptions(e.what());  // the adapter's message names the entry
  }
}

std::chrono::microseconds us(Nanos d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d);
}

const WatchdogOptions& checked(const WatchdogOptions& o) {
  if (o.loop_lag_interval < std::chrono::milliseconds::zero())
    throw InvalidOptions("loop_lag_interval must not be negative");
  if (o.slow_callback_threshold < std::chrono::milliseconds::zero())
    throw InvalidOptions("slow_callback_threshold must not be negative");
  if (o.max_concurrent_connects == 0)
    throw InvalidOptions("max_concurrent_connects must be at least 1");
  if (o.connector_threads > kMaxConnectorThreads)
    throw InvalidOptions("connector_threads must be at most " +
                         std::to_string(kMaxConnectorThreads) + ", got " +
                         std::to_string(o.connector_threads));
  return o;
}

std::unique_ptr<Connector> make_connector(GuardedLoop& loop, std::size_t threads) {
  if (threads == 0) return std::make_unique<LoopConnector>(loop);
  return std::make_unique<ConnectorPool>(loop, loop, threads);
}

}  // namespace

/// The most of the loop's time the watchdog's callbacks take before the loop polls again
/// (GuardedLoop::Reports::pass_budget): a server restart that ends 10,000 connections is then
/// handled over many short passes, not in a few of 100+ ms.
constexpr Nanos kPassBudget = std::chrono::milliseconds(5);
/// The most of the loop's time remove_targets spends closing connections in one pass. Half the
/// budget: the closer is a timer, which runs only while half the budget is left
/// (GuardedLoop::declined), so closing never takes the watchdog's share of a pass past it.
constexpr Nanos kCloseStep = kPassBudget / 2;

class Watchdog::Impl {
 public:
  Impl(std::unique_ptr<LibeventLoop> own_loop, Loop& host_loop, const WatchdogOptions& options)
      : own_loop_(std::move(own_loop)),
        observer_(checked(options).observer),
        logger_(options.logger ? options.logger : spdlog::default_logger()),
        metrics_(options.metrics ? options.metrics : make_series_store()),
        store_(Store::of(*metrics_)),
        name_(claim_name(store_, options.name)),
        loop_metrics_(store_, name_->name(), !options.per_target_histograms),
        loop_(host_loop, {[this](Nanos late) { loop_metrics_.timer_late(late); },
                          [this](const SlowCallback& slow) { report_slow(slow); },
                          options.slow_callback_threshold, kPassBudget}),
        resolver_(make_resolver(loop_, options.nameservers)),
        gate_(loop_, options.max_concurrent_connects),
        connector_(make_connector(loop_, options.connector_threads)),
        ledger_(std::make_shared<LendingLedger>(
            [this](std::function<void()> task) { loop_.post(std::move(task)); }, store_, logger_)),
        desk_(std::make_unique<LendingDesk>(loop_, ledger_, *logger_)),
        opener_(std::make_shared<SessionOpener>(loop_, *resolver_, *connector_)) {
    if (options.loop_lag_interval > std::chrono::milliseconds::zero()) {
      // Each tick is a timer like any other: the guard measures how late it runs.
      ticker_ = loop_.make_timer(
          [this, period = Nanos(options.loop_lag_interval)] { ticker_->arm(period); });
      ticker_->arm(options.loop_lag_interval);
    }
  }

  ~Impl() {
    opener_.reset();   // openings in flight first: they use the resolver and the connector
    desk_.reset();     // lent connections next: the desk lets go of them
    closing_.clear();  // their destructors close what is still open
    targets_.clear();
  }

  GuardedLoop& loop() noexcept { return loop_; }

  /// Silences everything and closes every connection; what is left is freed with the Impl.
  void shut_down() {
    observer_ = nullptr;
    ticker_.reset();
    desk_->shut_down();
    for (const auto& t : targets_) t->retire();
    for (const auto& t : closing_) t->retire();  // freed with the Impl
    if (closer_) closer_->disarm();
  }

  void add_target(TargetOptions options) {
    TargetSettings settings = prepare_target(options);
    add_target(std::move(options), std::move(settings));
  }

  /// `settings` is what prepare_target made of `options`.
  void add_target(TargetOptions options, TargetSettings settings) {
    if (by_name_.contains(options.name))
      throw InvalidTarget("target '" + options.name + "': a target with this name already exists");
    auto claim = store_.claim_target(options.name);
    if (!claim)
      throw InvalidTarget("target '" + options.name +
                          "': another Watchdog on the same metrics store watches a target "
                          "with this name");
    auto target = std::make_unique<Target>(
        options, std::move(settings), loop_, *resolver_, *connector_, loop_, random_, gate_, store_,
        std::move(claim), observer_, *logger_, loop_metrics_.shared_histograms(),
        [this](const std::string& behind) { fronted_.alert(behind); });
    Target& added = *target;
    targets_.push_back(std::move(target));
    by_name_.emplace(added.name(), std::prev(targets_.end()));
    fronted_.add(added);
    added.start();
  }

  bool remove_target(std::string_view name) {
    const auto found = by_name_.find(name);
    if (found == by_name_.end()) return false;
    const auto it = found->second;
    by_name_.erase(found);
    // We may be inside one of this target's callbacks: silence it and close its connections
    // now, free it once the watchdog's code has left the stack.
    (*it)->retire();
    fronted_.remove(**it);
    std::unique_ptr<Target> removed = std::move(*it);
    targets_.erase(it);
    loop_.delete_when_safe(std::move(removed));
    logger_->info("target {}: removed", name);
    return true;
  }

  std::size_t remove_targets(std::span<const std::string> names) {
    // Two halves. What callers see happens now, O(1) a target: gone from the index, silenced
    // (no event, no series, the name free again). What costs, closing the connections (a
    // PQfinish each), happens in steps of at most kCloseStep of the loop's time: the first one
    // now, in what is left of kCloseStep after the first half (so the call as a whole is one
    // step), the rest on later loop passes, so that removing 5,000 targets is not one stall.
    const MonotonicTime started = loop_.now();
    std::size_t removed = 0;
    for (const std::string& name : names) {
      const auto found = by_name_.find(name);
      if (found == by_name_.end()) continue;
      const auto it = found->second;
      by_name_.erase(found);
      (*it)->silence();
      fronted_.remove(**it);
      closing_.push_back(std::move(*it));
      targets_.erase(it);
      logger_->info("target {}: removed", name);
      ++removed;
    }
    close_some(started + kCloseStep);
    return removed;
  }

  std::size_t targets_closing() const noexcept { return closing_.size(); }

  std::vector<std::string> target_names() const {
    std::vector<std::string> names;
    for (const auto& t : targets_) names.push_back(t->name());
    return names;
  }

  std::vector<ConnectionState> connection_states(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? std::vector<ConnectionState>{} : (*it->second)->states();
  }

  const std::shared_ptr<SeriesStore>& metrics() const noexcept { return metrics_; }
  const std::string& name() const noexcept { return name_->name(); }

  /// Any thread: the ledger is thread-safe, and the ledger_ pointer never changes.
  Loan lend(PGconn* connection, LendOptions options, std::function<void()> on_probe_end = {}) {
    return ledger_->lend(connection, std::move(options), std::move(on_probe_end));
  }

  /// Any thread: what it returns posts to the loop, and holds the opener weakly.
  OpenFunction open_function(std::shared_ptr<const LinkSettings> settings, std::string target) {
    return SessionOpener::from_any_thread(loop_, opener_, std::move(settings), std::move(target));
  }

 private:
  // A list, so that the index's iterators stay valid; in the order added (target_names()).
  using Targets = std::list<std::unique_ptr<Target>>;

  /// Retires silenced targets, oldest first, until `until`; what is left waits for the next
  /// loop pass (a zero timer: it runs after the loop has polled again), which has kCloseStep.
  void close_some(MonotonicTime until) {
    while (!closing_.empty() && loop_.now() < until) {
      std::unique_ptr<Target> target = std::move(closing_.front());
      closing_.pop_front();
      target->retire();
      loop_.delete_when_safe(std::move(target));
    }
    if (!closing_.empty()) {
      if (!closer_) closer_ = loop_.make_timer([this] { close_some(loop_.now() + kCloseStep); });
      closer_->arm(Nanos::zero());
    }
  }

  void report_slow(const SlowCallback& slow) {
    loop_metrics_.slow_callback(slow.phase);
    const std::string who =
        slow.connection ? fmt::format(" of {}[{}]", slow.connection->target, slow.connection->index)
                        : std::string();
    const std::string what = slow.detail ? fmt::format(" ({})", slow.detail) : std::string();
    logger_->warn("slow callback: {} in {}{}{}: every watched connection waited meanwhile",
                  us(slow.took), to_string(slow.phase), what, who);
  }

  std::unique_ptr<LibeventLoop> own_loop_;  // first: outlives everything registered with it
  Observer* observer_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<SeriesStore> metrics_;
  Store& store_;  // *metrics_
  std::unique_ptr<Store::Claim> name_;
  LoopSeries loop_metrics_;
  GuardedLoop loop_;                    // everything below registers its callbacks through it
  std::unique_ptr<Resolver> resolver_;  // outlives every target's lookups
  SystemRandom random_;
  AttemptGate gate_;                      // outlives every target's connections
  std::unique_ptr<Connector> connector_;  // outlives every target's connect attempts
  TimerPtr ticker_;
  Targets targets_;
  std::deque<std::unique_ptr<Target>> closing_;  // removed and silenced, connections still open
  TimerPtr closer_;                              // close_some() on a later loop pass
  std::unordered_map<std::string_view, Targets::iterator> by_name_;  // keys: the targets' names
  FrontedTargets fronted_;  // the targets in front of others (TargetOptions::in_front_of)
  std::shared_ptr<LendingLedger> ledger_;  // outlives the Watchdog while a Loan holds it
  std::unique_ptr<LendingDesk> desk_;      // destroyed early, letting go of lent connections
  // Openings for pools; only the loop thread holds it strongly (tasks posted from other threads
  // hold it weakly), so that it goes with the Impl, on the loop.
  std::shared_ptr<SessionOpener> opener_;
};

namespace {

std::unique_ptr<LibeventLoop> libevent_loop(event_base* base) {
  if (!base) throw InvalidOptions("Watchdog needs an event_base");
  return std::make_unique<LibeventLoop>(base);
}

}  // namespace

Watchdog::Watchdog(Loop& loop, WatchdogOptions options)
    : impl_(std::make_unique<Impl>(nullptr, loop, options)) {}

Watchdog::Watchdog(event_base* base, WatchdogOptions options) {
  auto own = libevent_loop(base);
  Loop& loop = *own;
  impl_ = std::make_unique<Impl>(std::move(own), loop, options);
}

Watchdog::~Watchdog() {
  if (!impl_->loop().inside_callback()) return;  // impl_ goes now
  // Inside one of our own callbacks: our code is still on the stack. Silence everything now,
  // free the rest when the outermost callback returns.
  impl_->shut_down();
  GuardedLoop& loop = impl_->loop();
  loop.delete_when_safe(std::move(impl_));
}

void Watchdog::add_target(TargetOptions options) {
  impl_->add_target(std::move(options));
}
void add_prepared_target(Watchdog& watchdog, TargetOptions options, TargetSettings settings) {
  watchdog.impl_->add_target(std::move(options), std::move(settings));
}
bool Watchdog::remove_target(std::string_view name) {
  return impl_->remove_target(name);
}
std::size_t Watchdog::remove_targets(std::span<const std::string> names) {
  return impl_->remove_targets(names);
}
std::size_t Watchdog::targets_closing() const noexcept {
  return impl_->targets_closing();
}
std::vector<std::string> Watchdog::target_names() const {
  return impl_->target_names();
}
std::vector<ConnectionState> Watchdog::connection_states(std::string_view target) const {
  return impl_->connection_states(target);
}
Loan Watchdog::lend(PGconn* connection, LendOptions options) {
  return impl_->lend(connection, std::move(options));
}
const std::shared_ptr<SeriesStore>& Watchdog::metrics() const noexcept {
  return impl_->metrics();
}
const std::string& Watchdog::name() const noexcept {
  return impl_->name();
}

Loan WatchdogInternals::lend(Watchdog& watchdog, PGconn* connection, LendOptions options,
                             std::function<void()> on_probe_end) {
  return watchdog.impl_->lend(connection, std::move(options), std::move(on_probe_end));
}

OpenFunction WatchdogInternals::open_function(Watchdog& watchdog,
                                              std::shared_ptr<const LinkSettings> settings,
                                              std::string target) {
  return watchdog.impl_->open_function(std::move(settings), std::move(target));
}

}  // namespace pgwd
