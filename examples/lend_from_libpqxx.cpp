// For authors of other pools (docs/lending-and-pool.md "For authors of other pools"): a pool that
// keeps raw PGconn* (taopq-style) and hands its users libpqxx connections, lending every idle
// connection to pgwatchdog in between. Checkout is take_back(): a verdict without a round trip.
//
//   lend_from_libpqxx "host=... dbname=... user=..."
//
// libpqxx 7 has this built in: pqxx::connection::seize_raw_connection(PGconn*) to wrap, and
// std::move(c).release_raw_connection() to get the PGconn* back. Debian 12 ships libpqxx 6.4,
// where a connection policy does the same: it adopts a PGconn* on activation, and gives it back
// (instead of PQfinish) on close. Both are below; the preprocessor picks the one installed.
#include <libpq-fe.h>
#include <pqxx/pqxx>

#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <string>

#include "pgwd/watchdog_thread.hpp"

namespace {

struct PgConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using OwnedConn = std::unique_ptr<PGconn, PgConnDeleter>;

#if PQXX_VERSION_MAJOR >= 7
// libpqxx 7: the library does it.
class Borrowed {
 public:
  explicit Borrowed(PGconn* raw) : connection_(pqxx::connection::seize_raw_connection(raw)) {}
  pqxx::connection& get() { return connection_; }
  PGconn* give_back() && { return std::move(connection_).release_raw_connection(); }

 private:
  pqxx::connection connection_;
};
#else
// libpqxx 6: a policy that adopts the pool's PGconn* and never closes it.
class AdoptingPolicy : public pqxx::connectionpolicy {
 public:
  explicit AdoptingPolicy(PGconn* raw) : pqxx::connectionpolicy(std::string{}), raw_(raw) {}
  handle do_startconnect(handle) override {
    // libpqxx installs its own notice processor; remember libpq's, to put it back.
    saved_processor_ = PQsetNoticeProcessor(raw_, nullptr, nullptr);
    return raw_;
  }
  handle do_completeconnect(handle h) override { return h; }
  handle do_dropconnect(handle h) noexcept override { return release(h); }
  handle do_disconnect(handle h) noexcept override { return release(h); }

 private:
  handle release(handle h) noexcept {
    // The processor libpqxx set points to the pqxx::connection about to go: restore libpq's.
    if (h != nullptr) PQsetNoticeProcessor(h, saved_processor_, nullptr);
    return nullptr;  // not PQfinish: the pool owns the connection
  }
  PGconn* raw_;
  PQnoticeProcessor saved_processor_ = nullptr;
};

class BorrowedConnection : public pqxx::connection_base {
 public:
  explicit BorrowedConnection(PGconn* raw) : pqxx::connection_base(policy_), policy_(raw) {
    init();
  }
  ~BorrowedConnection() { close(); }
  BorrowedConnection(const BorrowedConnection&) = delete;
  BorrowedConnection& operator=(const BorrowedConnection&) = delete;

 private:
  AdoptingPolicy policy_;
};

class Borrowed {
 public:
  explicit Borrowed(PGconn* raw) : raw_(raw), connection_(std::make_unique<BorrowedConnection>(raw)) {}
  pqxx::connection_base& get() { return *connection_; }
  PGconn* give_back() && {
    connection_.reset();  // closes the pqxx side only
    return raw_;
  }

 private:
  PGconn* raw_;
  std::unique_ptr<BorrowedConnection> connection_;
};
#endif

/// The smallest pool that lends: idle connections are Loans, checkout is try_take_back().
class LendingPool {
 public:
  LendingPool(pgwd::WatchdogThread& watchdog, std::string dsn)
      : watchdog_(watchdog), dsn_(std::move(dsn)) {}

  /// A live connection: an idle one the watchdog vouches for, else a new one.
  OwnedConn checkout() {
    while (!idle_.empty()) {
      Idle entry = std::move(idle_.back());
      idle_.pop_back();
      const pgwd::TakenBack back = entry.loan.try_take_back();
      if (back.verdict == pgwd::LoanVerdict::alive) return std::move(entry.connection);
      if (back.verdict == pgwd::LoanVerdict::busy) {  // a probe in flight: not now
        busy_.push_back(std::move(entry));
        continue;
      }
      std::cout << "checkout: dropped a connection the watchdog found "
                << pgwd::to_string(back.verdict) << "\n";
    }
    for (auto& entry : busy_) idle_.push_back(std::move(entry));
    busy_.clear();
    OwnedConn fresh{PQconnectdb(dsn_.c_str())};
    if (PQstatus(fresh.get()) != CONNECTION_OK) {
      throw std::runtime_error(std::string("connect: ") + PQerrorMessage(fresh.get()));
    }
    return fresh;
  }

  /// Idle again: lent to the watchdog until the next checkout.
  void give_back(OwnedConn connection) {
    if (PQstatus(connection.get()) != CONNECTION_OK ||
        PQtransactionStatus(connection.get()) != PQTRANS_IDLE) {
      return;  // broken or mid-transaction: closed by OwnedConn
    }
    pgwd::LendOptions options;
    options.target = "libpqxx_pool";
    pgwd::Loan loan = watchdog_.lend(connection.get(), options);
    idle_.push_back({std::move(connection), std::move(loan)});
  }

 private:
  // Declared in this order so that the Loan (taken back on destruction) goes before the PGconn.
  struct Idle {
    OwnedConn connection;
    pgwd::Loan loan;
  };
  pgwd::WatchdogThread& watchdog_;
  std::string dsn_;
  std::deque<Idle> idle_;
  std::deque<Idle> busy_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: lend_from_libpqxx CONNINFO\n";
    return 2;
  }
  try {
    pgwd::WatchdogThread watchdog;
    LendingPool pool(watchdog, argv[1]);
    for (int round = 0; round < 3; ++round) {
      Borrowed borrowed(pool.checkout().release());  // the pool's PGconn*, as libpqxx
      {
        pqxx::work tx(borrowed.get());
        const auto backend = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
        tx.commit();
        std::cout << "round " << round << ": backend " << backend << "\n";
      }
      pool.give_back(OwnedConn{std::move(borrowed).give_back()});
    }
  } catch (const std::exception& error) {
    std::cerr << "lend_from_libpqxx: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
