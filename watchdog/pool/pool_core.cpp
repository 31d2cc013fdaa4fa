#include "pool/pool_core.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "pool/session_reset.hpp"

namespace pgwd {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start,
                     std::chrono::steady_clock::time_point now) {
  return std::chrono::duration<double>(now - start).count();
}

std::string millis(std::chrono::nanoseconds duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count()) +
         " ms";
}

}  // namespace

PoolCore::PoolCore(Parts parts, PoolOptions options, std::shared_ptr<SeriesStore> metrics)
    : lend_(std::move(parts.lend)),
      open_(std::move(parts.open)),
      reset_(parts.reset ? std::move(parts.reset) : reset_for_reuse),
      now_(parts.now ? std::move(parts.now) : [] { return Clock::now(); }),
      options_(std::move(options)),
      logger_(options_.logger ? options_.logger : spdlog::default_logger()),
      metrics_store_(std::move(metrics)),
      metrics_(Store::of(*metrics_store_), options_.name),
      backoff_(options_.backoff_initial, options_.backoff_max, random_) {
  publish_sizes_locked();
}

PoolCore::~PoolCore() = default;

void PoolCore::start() {
  housekeeper_ = std::thread([this] { housekeeping_loop(); });
}

// --- checkout ---------------------------------------------------------------------------------

Lease PoolCore::acquire() {
  const auto started = now();
  const auto deadline = started + options_.acquire_timeout;
  std::unique_lock lock(mutex_);
  const auto waiting = sync_waiters_.insert(started);
  struct Unwait {
    PoolCore& core;
    std::multiset<Clock::time_point>::iterator waiting;
    ~Unwait() {
      core.sync_waiters_.erase(waiting);
      core.publish_sizes_locked();
    }
  } unwait{*this, waiting};  // under the lock: every exit below holds it
  for (;;) {
    if (stopping_) throw PoolClosed("pool '" + options_.name + "' is closing");
    const std::uint64_t probe_ends = probe_ends_;  // checkout unlocks: a probe may end meanwhile
    bool saw_busy = false;
    if (auto lease = checkout_locked(lock, saw_busy)) {
      metrics_.observe_acquire(seconds_since(started, now()));
      return std::move(*lease);
    }
    if (deficit_locked() > 0) work_.notify_one();
    publish_sizes_locked();
    const auto now = this->now();
    if (now >= deadline) throw PoolTimeout(timeout_message_locked(now - started));
    // With only busy connections idle, the end of their probe (on_probe_end) wakes us; one
    // that ended while checkout had let go of the lock is seen here.
    if (saw_busy && probe_ends_ != probe_ends) continue;
    // Passed over (passing_over_locked), a waiter looks again when that ends: a connection given
    // back meanwhile may still be idle, as nobody came back for it.
    const auto pass_over_ends = pass_over_ends_for_locked(started);
    const bool passed_over = opening_time_ > Clock::duration::zero() && now < pass_over_ends;
    available_.wait_until(lock, passed_over ? std::min(deadline, pass_over_ends) : deadline);
  }
}

void PoolCore::acquire_async(AsyncDone done) {
  const auto started = now();
  std::unique_lock lock(mutex_);
  if (stopping_) {
    lock.unlock();
    complete_async({std::move(done), started, started}, Lease{},
                   std::make_exception_ptr(PoolClosed("pool '" + options_.name + "' is closing")));
    return;
  }
  bool saw_busy = false;
  if (auto lease = checkout_locked(lock, saw_busy)) {
    lock.unlock();
    metrics_.observe_acquire(seconds_since(started, now()));
    complete_async({std::move(done), started, started}, std::move(*lease), nullptr);
    return;
  }
  async_waiters_.push_back({std::move(done), started, started + options_.acquire_timeout});
  publish_sizes_locked();
  work_.notify_one();  // open one, expire it at its deadline, retry the busy ones
}

std::optional<Lease> PoolCore::checkout_locked(std::unique_lock<std::mutex>& lock,
                                               bool& saw_busy) {
  std::vector<std::unique_ptr<PooledConnection>> busy;
  std::optional<Lease> handed;
  while (!handed && !idle_.empty() && !stopping_) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    ++checking_out_;
    lock.unlock();
    TakenBack verdict = connection->loan.try_take_back();
    const auto now = this->now();
    lock.lock();
    --checking_out_;
    switch (verdict.verdict) {
      case LoanVerdict::alive:
        counters_.notifications += verdict.notifications.size();
        if (expired(*connection, now)) {
          doom_locked(std::move(connection), "max_lifetime");
          work_.notify_one();
          break;
        }
        ++counters_.checkouts;
        ++in_use_;
        connection->loan = Loan{};
        handed.emplace(Lease(shared_from_this(), std::move(connection),
                             std::move(verdict.notifications)));
        break;
      case LoanVerdict::busy:
        ++counters_.checkouts_found_busy;
        busy.push_back(std::move(connection));
        break;
      case LoanVerdict::dead:
        ++counters_.checkouts_found_dead;
        metrics_.count_found_dead();
        doom_locked(std::move(connection), verdict.death
                                               ? std::string(to_string(verdict.death->cause))
                                               : std::string("closed"));
        work_.notify_one();
        break;
      case LoanVerdict::watchdog_stopped:
        // Not watched since the watchdog went away: unknown, so not handed out.
        doom_locked(std::move(connection), "watchdog_stopped");
        work_.notify_one();
        break;
    }
  }
  // Still lent, their probe still running: back where the next checkout finds them.
  saw_busy = !busy.empty();
  for (auto& connection : busy) idle_.push_back(std::move(connection));
  publish_sizes_locked();
  return handed;
}

// --- return -----------------------------------------------------------------------------------

void PoolCore::give_back(std::unique_ptr<PooledConnection> connection, bool discard) noexcept {
  try {
    std::string cause;
    if (discard) {
      cause = "discarded";
    } else {
      switch (reset_(connection->connection.get(), options_.rollback_timeout)) {
        case ReturnedState::reusable:
          break;
        case ReturnedState::rolled_back: {
          const std::lock_guard lock(mutex_);
          ++counters_.rollbacks;
          break;
        }
        case ReturnedState::broken:
          cause = "broken";
          break;
        case ReturnedState::rollback_failed:
          cause = "rollback_failed";
          break;
      }
    }
    if (cause.empty() && expired(*connection, now())) cause = "max_lifetime";
    {
      const std::lock_guard lock(mutex_);
      --in_use_;
      if (stopping_ && cause.empty()) cause = "pool_closed";
      if (cause.empty()) {
        publish_sizes_locked();
      } else {
        // Closed here, on the releasing thread (PQfinish sends one Terminate message).
        --live_;
        count_closed_locked(cause);
        publish_sizes_locked();
        work_.notify_one();  // a replacement, if waiters or min_idle want one
      }
    }
    if (!cause.empty()) {
      connection.reset();
      return;
    }
    make_available(std::move(connection), /*given_back=*/true);
  } catch (const std::exception& error) {
    logger_->error("pool '{}': giving a connection back failed: {}", options_.name, error.what());
  }
}

void PoolCore::make_available(std::unique_ptr<PooledConnection> connection, bool given_back) {
  std::unique_lock lock(mutex_);
  const bool pass_over = given_back && passing_over_locked(now());
  if (pass_over) {
    ++counters_.given_to_next_asker;
    metrics_.count_given_to_next_asker();
  }
  if (!async_waiters_.empty() && !stopping_ && !pass_over) {
    // Straight to a waiter: it was just in use or just opened, so the watchdog has nothing to
    // say about it yet.
    AsyncWaiter waiter = std::move(async_waiters_.front());
    async_waiters_.pop_front();
    ++counters_.checkouts;
    ++in_use_;
    publish_sizes_locked();
    lock.unlock();
    metrics_.observe_acquire(seconds_since(waiter.started, now()));
    Lease lease(shared_from_this(), std::move(connection), {});
    complete_async(std::move(waiter), std::move(lease), nullptr);
    return;
  }
  lock.unlock();
  try {
    std::weak_ptr<PoolCore> weak = weak_from_this();
    connection->loan = lend_(connection->connection.get(), lend_options(connection->id), [weak] {
      if (const auto core = weak.lock()) core->on_probe_end();
    });
    connection->lent_at = std::chrono::steady_clock::now();
  } catch (const std::exception& refused) {  // LendRefused, or the watchdog out of memory
    logger_->warn("pool '{}': the watchdog refused a connection: {}", options_.name,
                  refused.what());
    lock.lock();
    --live_;
    count_closed_locked("lend_refused");
    publish_sizes_locked();
    work_.notify_one();
    lock.unlock();
    connection.reset();
    return;
  }
  lock.lock();
  if (stopping_) {
    // The housekeeper may be gone already: close it here (not the watchdog's thread).
    lock.unlock();
    connection->loan = Loan{};
    connection.reset();
    lock.lock();
    --live_;
    count_closed_locked("pool_closed");
  } else {
    idle_.push_back(std::move(connection));
    busy_seen_at_ = kNothingBusy;  // one more to try: the housekeeper looks again
  }
  publish_sizes_locked();
  lock.unlock();
  if (!pass_over) available_.notify_one();
  work_.notify_one();  // an async waiter may have come in meanwhile (or: when passing over ends)
}

LendOptions PoolCore::lend_options(std::uint64_t id) {
  LendOptions lend;
  lend.target = options_.name;
  lend.probe_query = options_.probe_query;
  lend.probe_timeout = options_.probe_timeout;
  lend.heartbeat = options_.heartbeat;
  lend.heartbeat_query = options_.heartbeat_query;
  // The callbacks hold the core weakly: a death reported after the pool is gone is dropped.
  std::weak_ptr<PoolCore> weak = weak_from_this();
  lend.on_death = [weak, id](const LoanDeath& death) {
    if (auto core = weak.lock()) core->on_death(id, death);
  };
  lend.on_server_lost = [weak](const ServerLost& lost) {
    if (auto core = weak.lock()) core->on_server_lost(lost);
  };
  return lend;
}

// --- the watchdog's callbacks (its thread): move out of idle_, nothing more ----------------------

void PoolCore::on_death(std::uint64_t id, const LoanDeath& death) {
  const std::lock_guard lock(mutex_);
  const auto found = std::find_if(idle_.begin(), idle_.end(),
                                  [id](const auto& connection) { return connection->id == id; });
  // Not idle: a checkout is taking it back right now, and will see the verdict.
  if (found == idle_.end()) return;
  ++counters_.dropped_while_idle;
  doom_locked(std::move(*found), std::string(to_string(death.cause)));
  idle_.erase(found);
  publish_sizes_locked();
  work_.notify_one();
}

void PoolCore::on_probe_end() {
  {
    const std::lock_guard lock(mutex_);
    ++probe_ends_;
    if (sync_waiters_.empty() && async_waiters_.empty()) return;
  }
  available_.notify_all();
  work_.notify_one();
}

void PoolCore::on_server_lost(const ServerLost& lost) {
  const std::lock_guard lock(mutex_);
  // Only what was lent before the evidence was complete: one lent since (a replacement opened
  // after the first deaths; seen in CI, where it was dropped and counted though it was fresh)
  // is from the server's new life. After "all died", on_death has dropped every older one
  // already (it is told first); after a 57P02, the older ones are doomed and may not know yet.
  const auto older = std::stable_partition(
      idle_.begin(), idle_.end(), [&](const auto& c) { return c->lent_at > lost.evidence_at; });
  const auto lost_count = static_cast<std::size_t>(idle_.end() - older);
  if (lost_count == 0) return;
  logger_->warn("pool '{}': the server went away ({}): dropping {} idle connections", options_.name,
                lost.reason, lost_count);
  counters_.dropped_while_idle += lost_count;
  for (auto it = older; it != idle_.end(); ++it) doom_locked(std::move(*it), "server_lost");
  idle_.erase(older, idle_.end());
  publish_sizes_locked();
  work_.notify_one();
}

// --- bookkeeping ------------------------------------------------------------------------------

bool PoolCore::passing_over_locked(Clock::time_point now) const {
  if (stopping_ || opening_time_ <= Clock::duration::zero()) return false;  // none measured yet
  const std::size_t waiting = waiters_locked();
  // More waiters than openings: one of them has none coming, and would wait for a return.
  if (waiting == 0 || waiting > opening_) return false;
  return now < pass_over_ends_locked();
}

PoolCore::Clock::time_point PoolCore::pass_over_ends_locked() const {
  auto oldest = Clock::time_point::max();
  if (!sync_waiters_.empty()) oldest = *sync_waiters_.begin();
  if (!async_waiters_.empty()) oldest = std::min(oldest, async_waiters_.front().started);
  if (oldest == Clock::time_point::max()) return oldest;
  return pass_over_ends_for_locked(oldest);
}

PoolCore::Clock::time_point PoolCore::pass_over_ends_for_locked(
    Clock::time_point waiting_since) const {
  return waiting_since + 2 * opening_time_;
}

std::size_t PoolCore::waiters_locked() const {
  return sync_waiters_.size() + async_waiters_.size();
}

bool PoolCore::expired(const PooledConnection& connection, Clock::time_point now) const {
  return options_.max_lifetime.count() > 0 && now - connection.opened_at >= options_.max_lifetime;
}

std::size_t PoolCore::deficit_locked() const {
  if (stopping_) return 0;
  const std::size_t total = live_ + opening_;
  if (total >= options_.max_size) return 0;
  const std::size_t short_of_min_idle =
      idle_.size() < options_.min_idle ? options_.min_idle - idle_.size() : 0;
  // Waiters that an idle connection will serve want no opening: a connection just made idle
  // (opened, or given back) stays idle until its waiter wakes and takes it, and counting that
  // waiter again opened a second connection (seen: `pool: a connection given back ...` with two
  // idle at max_size 2). One whose probe is in flight is free again when the probe ends. The
  // same holds while a checkout has taken one out of idle_ and let go of the lock to ask the
  // watchdog for it: counted as idle, or the housekeeper opened a second one then (the same
  // test, in a CI run under load).
  const std::size_t waiting = waiters_locked();
  const std::size_t served = idle_.size() + checking_out_;
  const std::size_t unserved = waiting > served ? waiting - served : 0;
  const std::size_t wanted = std::max({short_of_min_idle, unserved, owed_replacements_});
  if (wanted <= opening_) return 0;
  return std::min(wanted - opening_, options_.max_size - total);
}

void PoolCore::publish_sizes_locked() {
  metrics_.set_sizes(idle_.size(), in_use_, opening_, waiters_locked());
}

void PoolCore::doom_locked(std::unique_ptr<PooledConnection> connection, std::string cause) {
  // Counted now, when it stops being usable; closed when the housekeeper gets to it (it may be
  // inside a connect attempt meanwhile).
  count_closed_locked(cause);
  doomed_.push_back(std::move(connection));
}

void PoolCore::count_closed_locked(std::string_view cause) {
  ++counters_.replaced;
  metrics_.count_replaced(cause);
  // Lost rather than let go: the server's causes (a death, "server_lost", "closed", "broken",
  // "rollback_failed") and age. A connection the user discarded, one the watchdog would not
  // take, or one closed because the watchdog or the pool is going away is not reopened.
  const bool let_go = cause == "discarded" || cause == "lend_refused" ||
                      cause == "watchdog_stopped" || cause == "pool_closed";
  if (!let_go && !stopping_)
    owed_replacements_ = std::min(owed_replacements_ + 1, options_.max_size);
}

std::string PoolCore::timeout_message_locked(std::chrono::nanoseconds waited) const {
  std::string message = "pool '" + options_.name + "': no connection within " + millis(waited) +
                        " (acquire_timeout " + millis(options_.acquire_timeout) + "); " +
                        std::to_string(in_use_) + " in use, " + std::to_string(idle_.size()) +
                        " idle, " + std::to_string(opening_) + " opening, max_size " +
                        std::to_string(options_.max_size);
  if (!last_connect_error_.empty()) message += "; last connect error: " + last_connect_error_;
  return message;
}

PoolStats PoolCore::stats() const {
  const std::lock_guard lock(mutex_);
  PoolStats stats = counters_;
  stats.idle = idle_.size();
  stats.in_use = in_use_;
  stats.opening = opening_;
  stats.waiters = waiters_locked();
  return stats;
}

}  // namespace pgwd
