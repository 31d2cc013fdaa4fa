#include "compared_pools.hpp"

#include <stdexcept>

#include "pgwd/pool.hpp"

namespace pgwd::comparison {
namespace {

class NaiveCheckout : public Checkout {
 public:
  NaiveCheckout(NaivePool& pool, PGconn* connection) : pool_(pool), connection_(connection) {}
  ~NaiveCheckout() override { pool_.give_back(connection_); }
  NaiveCheckout(const NaiveCheckout&) = delete;
  NaiveCheckout& operator=(const NaiveCheckout&) = delete;
  PGconn* connection() const override { return connection_; }

 private:
  NaivePool& pool_;
  PGconn* connection_;
};

class LeaseCheckout : public Checkout {
 public:
  explicit LeaseCheckout(pgwd::Lease lease) : lease_(std::move(lease)) {}
  PGconn* connection() const override { return lease_.get(); }

 private:
  pgwd::Lease lease_;
};

bool ping(PGconn* connection) {
  PGresult* result = PQexec(connection, "-- ping");
  const bool ok = PQresultStatus(result) == PGRES_EMPTY_QUERY ||
                  PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  return ok;
}

}  // namespace

NaivePool::NaivePool(std::string dsn, bool ping_on_checkout)
    : dsn_(std::move(dsn)), ping_(ping_on_checkout) {}

NaivePool::~NaivePool() {
  for (PGconn* connection : idle_) PQfinish(connection);
}

PGconn* NaivePool::open() const {
  PGconn* connection = PQconnectdb(dsn_.c_str());
  if (PQstatus(connection) != CONNECTION_OK) {
    const std::string error = PQerrorMessage(connection);
    PQfinish(connection);
    throw std::runtime_error("connecting failed: " + error);
  }
  return connection;
}

std::unique_ptr<Checkout> NaivePool::checkout() {
  for (;;) {
    PGconn* connection = nullptr;
    {
      const std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        connection = idle_.back();
        idle_.pop_back();
      }
    }
    if (connection == nullptr) return std::make_unique<NaiveCheckout>(*this, open());
    if (!ping_) return std::make_unique<NaiveCheckout>(*this, connection);
    ++pings_;
    if (ping(connection)) return std::make_unique<NaiveCheckout>(*this, connection);
    PQfinish(connection);  // dead: the next idle one, or a new one
  }
}

void NaivePool::give_back(PGconn* connection) {
  if (PQstatus(connection) != CONNECTION_OK || PQtransactionStatus(connection) != PQTRANS_IDLE) {
    PQfinish(connection);
    return;
  }
  const std::lock_guard lock(mutex_);
  idle_.push_back(connection);
}

std::size_t NaivePool::idle() const {
  const std::lock_guard lock(mutex_);
  return idle_.size();
}

std::unique_ptr<Checkout> WatchdogPool::checkout() {
  return std::make_unique<LeaseCheckout>(pool_.acquire());
}

std::size_t WatchdogPool::idle() const { return pool_.stats().idle; }

}  // namespace pgwd::comparison
