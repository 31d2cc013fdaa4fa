// The pool's own thread: everything that may block and must not run on the watchdog's loop
// nor on a caller's thread. It opens connections (blocking PQconnectdb: the simplest correct
// choice on a thread of our own; libpq resolves names and authenticates inside it), with backoff
// after failures; it takes back and closes the connections the watchdog found dead (take-back
// may wait for a probe in flight; PQfinish writes to the socket); it retires idle connections
// past max_lifetime; and it completes asynchronous acquires that time out.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "pgwd/watchdog.hpp"
#include "pool/pool_core.hpp"

namespace pgwd {

PgConnPtr PoolCore::open_connection() {
  PgConnPtr connection{PQconnectdb(options_.dsn.c_str())};
  if (connection && PQstatus(connection.get()) == CONNECTION_OK) return connection;
  std::string error = connection ? PQerrorMessage(connection.get()) : "out of memory";
  while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
  const std::lock_guard lock(mutex_);
  last_connect_error_ = error;  // libpq's words: they never contain the password
  return nullptr;
}

void PoolCore::complete_async(AsyncWaiter waiter, Lease lease, std::exception_ptr error) noexcept {
  try {
    waiter.done(std::move(lease), error);
  } catch (const std::exception& thrown) {
    logger_->error("pool '{}': an acquire_async callback threw: {}", options_.name, thrown.what());
  } catch (...) {
    logger_->error("pool '{}': an acquire_async callback threw", options_.name);
  }
}

void PoolCore::housekeeping_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto now = Clock::now();
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
    if (stopping_) break;

    // Asynchronous acquires past their deadline.
    const auto late = std::stable_partition(async_waiters_.begin(), async_waiters_.end(),
                                            [now](const auto& w) { return w.deadline > now; });
    if (late != async_waiters_.end()) {
      std::vector<AsyncWaiter> timed_out(std::make_move_iterator(late),
                                         std::make_move_iterator(async_waiters_.end()));
      async_waiters_.erase(late, async_waiters_.end());
      publish_sizes_locked();
      std::vector<std::string> messages;
      for (const auto& waiter : timed_out) messages.push_back(timeout_message_locked(now - waiter.started));
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
      const auto old = std::stable_partition(idle_.begin(), idle_.end(), [&](const auto& c) {
        return !expired(*c, now);
      });
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

    // Asynchronous acquirers waiting while connections are idle (their probes were in flight).
    if (!async_waiters_.empty() && !idle_.empty()) {
      bool saw_busy = false;
      if (auto lease = checkout_locked(lock, saw_busy)) {
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
        metrics_.observe_acquire(std::chrono::duration<double>(Clock::now() - waiter.started).count());
        complete_async(std::move(waiter), std::move(*lease), nullptr);
        lock.lock();
        continue;
      }
    }

    // Open one connection if waiters or min_idle want it and the backoff allows.
    if (deficit_locked() > 0 && now >= retry_connect_at_) {
      ++opening_;
      publish_sizes_locked();
      lock.unlock();
      PgConnPtr opened = open_connection();
      lock.lock();
      --opening_;
      if (!opened) {
        ++counters_.connect_failures;
        retry_connect_at_ = Clock::now() + backoff_.next();
        logger_->warn("pool '{}': connecting failed: {}", options_.name, last_connect_error_);
        publish_sizes_locked();
        continue;
      }
      backoff_.reset();
      last_connect_error_.clear();
      ++live_;
      auto connection = std::make_unique<PooledConnection>();
      connection->connection = std::move(opened);
      connection->id = next_id_++;
      connection->opened_at = Clock::now();
      publish_sizes_locked();
      lock.unlock();
      make_available(std::move(connection));
      lock.lock();
      continue;
    }

    // Nothing to do now: sleep until the next thing that has a time, or until woken.
    auto wake = Clock::time_point::max();
    for (const auto& waiter : async_waiters_) wake = std::min(wake, waiter.deadline);
    if (deficit_locked() > 0) wake = std::min(wake, retry_connect_at_);
    if (options_.max_lifetime.count() > 0) {
      for (const auto& c : idle_) wake = std::min(wake, c->opened_at + options_.max_lifetime);
    }
    if (!async_waiters_.empty() && !idle_.empty()) {
      wake = std::min(wake, now + std::chrono::milliseconds(1));  // busy ones: look again soon
    }
    if (wake == Clock::time_point::max()) {
      work_.wait(lock);
    } else {
      work_.wait_until(lock, wake);
    }
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
  if (housekeeper_.joinable()) housekeeper_.join();
}

}  // namespace pgwd
