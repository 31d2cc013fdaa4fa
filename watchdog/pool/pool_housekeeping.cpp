// The pool's own thread: everything that must not run on the watchdog's loop nor on a caller's
// thread, and nothing that waits for a server. It starts openings, at most max_concurrent_opens
// at once (one after a failure, until one succeeds), which the watchdog's loop carries out
// without blocking (WatchdogInternals::open_function: the watched connections' host walk), and
// takes their outcomes, with backoff after failures and a plain wait while the server starts
// up (57P03); it takes back and closes the connections the watchdog found dead (take-back may
// wait for a probe in flight; PQfinish writes to the socket); it retires idle connections past
// max_lifetime; and it completes asynchronous acquires at their deadline, the one it sleeps
// until.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "pgwd/watchdog.hpp"
#include "pool/pool_core.hpp"

namespace pgwd {

void PoolCore::complete_async(AsyncWaiter waiter, Lease lease, std::exception_ptr error) noexcept {
  try {
    waiter.done(std::move(lease), error);
  } catch (const std::exception& thrown) {
    logger_->error("pool '{}': an acquire_async callback threw: {}", options_.name, thrown.what());
  } catch (...) {
    logger_->error("pool '{}': an acquire_async callback threw", options_.name);
  }
}

void PoolCore::start_opening_locked(std::unique_lock<std::mutex>& lock) {
  const std::uint64_t ticket = next_ticket_++;
  const auto started = now();
  ++opening_;
  publish_sizes_locked();
  lock.unlock();
  // The outcome may come on any thread, even inside open_; the core may be gone by then.
  std::weak_ptr<PoolCore> weak = weak_from_this();
  std::function<void()> cancel = open_([weak, ticket](OpenOutcome outcome) {
    if (const auto core = weak.lock()) core->opened(ticket, std::move(outcome));
  });
  lock.lock();
  // Before the housekeeper (this thread) takes the outcome, whenever that came.
  openings_.emplace(ticket, OpeningInFlight{std::move(cancel), started});
}

void PoolCore::opened(std::uint64_t ticket, OpenOutcome outcome) {
  {
    const std::lock_guard lock(mutex_);
    if (!stopping_) {
      finished_opens_.emplace_back(ticket, std::move(outcome));
      work_.notify_one();
      return;
    }
  }
  // The pool is closing: the new connection is closed here, on the thread that brought it.
}

void PoolCore::take_opened_locked(std::unique_lock<std::mutex>& lock, Clock::time_point now) {
  auto [ticket, outcome] = std::move(finished_opens_.front());
  finished_opens_.pop_front();
  Clock::time_point started = now;
  if (const auto found = openings_.find(ticket); found != openings_.end()) {
    started = found->second.started;
    openings_.erase(found);
  }
  --opening_;
  if (!outcome.conn) {
    scouting_ = true;
    const Failure& failure = outcome.failure;
    last_connect_error_ = failure.message;  // redacted by the watchdog
    if (failure.cause == Cause::cannot_connect_now) {
      // 57P03: starting up (or shutting down, or in recovery without hot standby). Not an
      // error: try again after backoff_initial, without raising the backoff.
      ++counters_.connects_server_starting;
      retry_connect_at_ = std::max(retry_connect_at_, now + options_.backoff_initial);
      if (!server_starting_) {  // once per wait, not every backoff_initial
        logger_->info("pool '{}': the server cannot take connections yet, waiting: {}",
                      options_.name, failure.message);
      }
      server_starting_ = true;
    } else {
      server_starting_ = false;
      ++counters_.connect_failures;
      // Openings that fail together count as one step of the backoff.
      if (now >= retry_connect_at_) retry_connect_at_ = now + backoff_.next();
      logger_->warn("pool '{}': connecting failed: {}", options_.name, failure.message);
    }
    publish_sizes_locked();
    // A waiting acquire() passed over for this opening is passed over no more (more waiters
    // than openings now): an idle connection given back meanwhile is its to take.
    if (!idle_.empty() && !sync_waiters_.empty()) available_.notify_all();
    return;
  }
  backoff_.reset();
  const Clock::duration took = now - started;
  opening_time_ = opening_time_ <= Clock::duration::zero() ? took : (3 * opening_time_ + took) / 4;
  server_starting_ = false;
  scouting_ = false;
  last_connect_error_.clear();
  if (owed_replacements_ > 0) --owed_replacements_;
  ++live_;
  auto connection = std::make_unique<PooledConnection>();
  connection->connection = std::move(outcome.conn);
  connection->id = next_id_++;
  connection->opened_at = now;
  publish_sizes_locked();
  lock.unlock();
  make_available(std::move(connection));
  lock.lock();
}

std::size_t PoolCore::concurrent_opens_locked() const {
  return scouting_ ? 1 : options_.max_concurrent_opens;
}

PoolCore::Clock::time_point PoolCore::run_housekeeping() {
  std::unique_lock lock(mutex_);
  return housekeep_locked(lock);
}

void PoolCore::housekeeping_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto wake = housekeep_locked(lock);
    if (stopping_ && doomed_.empty()) break;
    if (wake == Clock::time_point::max()) {
      work_.wait(lock);
    } else {
      work_.wait_until(lock, wake);
    }
  }
}

PoolCore::Clock::time_point PoolCore::housekeep_locked(std::unique_lock<std::mutex>& lock) {
  for (;;) {
    const auto now = this->now();
    if (!doomed_.empty()) {
      std::vector<std::unique_ptr<PooledConnection>> closing;
      closing.swap(doomed_);
      lock.unlock();
      for (auto& doomed : closing) {
        doomed->loan = Loan{};  // takes it back if still lent (waits for a probe in flight)
        doomed->connection.reset();
      }
      lock.lock();
      live_ -= closing.size();
      publish_sizes_locked();
      continue;
    }
    if (stopping_) {
      // Openings in flight are cancelled; an outcome already on its way is closed by opened().
      std::map<std::uint64_t, OpeningInFlight> cancelling;
      cancelling.swap(openings_);
      std::deque<std::pair<std::uint64_t, OpenOutcome>> untaken;  // closed below, unlocked
      untaken.swap(finished_opens_);
      opening_ = 0;
      publish_sizes_locked();
      lock.unlock();
      for (auto& [ticket, opening] : cancelling) {
        if (opening.cancel) opening.cancel();
      }
      untaken.clear();
      lock.lock();
      return Clock::time_point::max();
    }

    if (!finished_opens_.empty()) {
      take_opened_locked(lock, now);
      continue;
    }

    // Asynchronous acquires past their deadline.
    const auto late = std::stable_partition(async_waiters_.begin(), async_waiters_.end(),
                                            [now](const auto& w) { return w.deadline > now; });
    if (late != async_waiters_.end()) {
      std::vector<AsyncWaiter> timed_out(std::make_move_iterator(late),
                                         std::make_move_iterator(async_waiters_.end()));
      async_waiters_.erase(late, async_waiters_.end());
      publish_sizes_locked();
      std::vector<std::string> messages;
      for (const auto& waiter : timed_out)
        messages.push_back(timeout_message_locked(now - waiter.started));
      lock.unlock();
      for (std::size_t i = 0; i < timed_out.size(); ++i) {
        complete_async(std::move(timed_out[i]), Lease{},
                       std::make_exception_ptr(PoolTimeout(messages[i])));
      }
      lock.lock();
      continue;
    }

    // Idle connections past max_lifetime.
    if (options_.max_lifetime.count() > 0) {
      const auto old = std::stable_partition(idle_.begin(), idle_.end(),
                                             [&](const auto& c) { return !expired(*c, now); });
      if (old != idle_.end()) {
        for (auto it = old; it != idle_.end(); ++it) {
          ++counters_.dropped_while_idle;
          doom_locked(std::move(*it), "max_lifetime");
        }
        idle_.erase(old, idle_.end());
        publish_sizes_locked();
        continue;
      }
    }

    // Asynchronous acquirers waiting while connections are idle (their probes were in flight, or
    // the waiters were passed over until now).
    if (!async_waiters_.empty() && !idle_.empty() && probe_ends_ != busy_seen_at_ &&
        !passing_over_locked(now)) {
      const std::uint64_t probe_ends = probe_ends_;  // checkout unlocks: a probe may end meanwhile
      bool saw_busy = false;
      auto lease = checkout_locked(lock, saw_busy);
      // Only busy ones: look again when a probe ends (on_probe_end), not before.
      busy_seen_at_ = saw_busy && !lease ? probe_ends : kNothingBusy;
      if (lease) {
        if (async_waiters_.empty()) {
          // Served meanwhile by a connection given back (checkout unlocks): return this one.
          lock.unlock();
          lease.reset();
          lock.lock();
          continue;
        }
        AsyncWaiter waiter = std::move(async_waiters_.front());
        async_waiters_.pop_front();
        publish_sizes_locked();
        lock.unlock();
        metrics_.observe_acquire(
            std::chrono::duration<double>(this->now() - waiter.started).count());
        complete_async(std::move(waiter), std::move(*lease), nullptr);
        lock.lock();
        continue;
      }
    }

    // Open what waiters, min_idle or the losses want, several at once, if the backoff allows.
    if (deficit_locked() > 0 && opening_ < concurrent_opens_locked() && now >= retry_connect_at_) {
      start_opening_locked(lock);
      continue;
    }

    // Nothing to do now: sleep until the next thing that has a time, or until woken.
    auto wake = Clock::time_point::max();
    for (const auto& waiter : async_waiters_) wake = std::min(wake, waiter.deadline);
    if (deficit_locked() > 0 && opening_ < concurrent_opens_locked()) {
      wake = std::min(wake, retry_connect_at_);
    }
    if (options_.max_lifetime.count() > 0) {
      for (const auto& c : idle_) wake = std::min(wake, c->opened_at + options_.max_lifetime);
    }
    if (!async_waiters_.empty() && !idle_.empty() && probe_ends_ != busy_seen_at_) {
      // Passed over: idle connections are for the next asker until then.
      if (passing_over_locked(now)) {
        wake = std::min(wake, pass_over_ends_locked());
      } else {
        continue;  // a probe ended while checkout had let go of the lock: look again now
      }
    }
    return wake;
  }
}

void PoolCore::stop() {
  std::vector<AsyncWaiter> waiters;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& connection : idle_) doom_locked(std::move(connection), "pool_closed");
    idle_.clear();
    waiters.assign(std::make_move_iterator(async_waiters_.begin()),
                   std::make_move_iterator(async_waiters_.end()));
    async_waiters_.clear();
    publish_sizes_locked();
  }
  available_.notify_all();
  work_.notify_all();
  for (auto& waiter : waiters) {
    complete_async(std::move(waiter), Lease{},
                   std::make_exception_ptr(PoolClosed("pool '" + options_.name + "' is closing")));
  }
  if (housekeeper_.joinable()) {
    housekeeper_.join();
  } else {
    run_housekeeping();  // never started (tests): close and cancel here
  }
}

}  // namespace pgwd
