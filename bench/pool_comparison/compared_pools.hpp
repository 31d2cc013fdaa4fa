#pragma once

// Three pools side by side (docs/lending-and-pool.md "Three pools side by side"): what a user
// of each sees when the server ended every idle backend (pg_terminate_backend) while they sat
// in the pool.
//  - naive: hands out whatever is idle (taopq, psycopg_pool, Boost.MySQL between its pings);
//  - ping-on-checkout: one round trip ("-- ping", as pgx sends) before each checkout (pgx,
//    HikariCP, sqlx), dead ones replaced;
//  - pgwatchdog: pgwd::Pool, whose idle connections are lent to a watchdog.

#include <libpq-fe.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pgwd {
class Pool;
class WatchdogThread;
}  // namespace pgwd

namespace pgwd::comparison {

/// A connection checked out of one of the compared pools; gives it back when destroyed.
class Checkout {
 public:
  virtual ~Checkout() = default;
  virtual PGconn* connection() const = 0;
};

class ComparedPool {
 public:
  virtual ~ComparedPool() = default;
  virtual std::string name() const = 0;
  /// Blocks until a connection is there (opening one on the caller's thread if the pool has
  /// none idle: these are the simple pools most services have).
  virtual std::unique_ptr<Checkout> checkout() = 0;
  /// Queries the pool sent by itself (not the user's): pings.
  virtual int extra_round_trips() const = 0;
  /// Idle connections now.
  virtual std::size_t idle() const = 0;
};

/// A mutex and a stack of idle PGconn*, as in taopq: no check at all at checkout (taopq's
/// "valid" = transaction status idle, which a terminated connection still reports).
class NaivePool : public ComparedPool {
 public:
  NaivePool(std::string dsn, bool ping_on_checkout);
  ~NaivePool() override;
  std::string name() const override { return ping_ ? "ping-on-checkout" : "naive"; }
  std::unique_ptr<Checkout> checkout() override;
  int extra_round_trips() const override { return pings_.load(); }
  std::size_t idle() const override;
  /// Gives a connection back: kept if libpq still says CONNECTION_OK, closed otherwise.
  void give_back(PGconn* connection);

 private:
  PGconn* open() const;
  std::string dsn_;
  bool ping_;
  std::atomic<int> pings_{0};
  mutable std::mutex mutex_;
  std::vector<PGconn*> idle_;  // owned; closed by the destructor
};

/// pgwd::Pool seen through the same interface.
class WatchdogPool : public ComparedPool {
 public:
  explicit WatchdogPool(pgwd::Pool& pool) : pool_(pool) {}
  std::string name() const override { return "pgwatchdog"; }
  std::unique_ptr<Checkout> checkout() override;
  int extra_round_trips() const override { return 0; }  // counted from the server's log
  std::size_t idle() const override;

 private:
  pgwd::Pool& pool_;
};

}  // namespace pgwd::comparison
