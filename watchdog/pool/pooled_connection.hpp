#pragma once

#include <chrono>
#include <cstdint>

#include "pg/handles.hpp"
#include "pgwd/lending.hpp"

namespace pgwd {

/// One connection of a pool, for its whole life: owned here (closed by PgConnPtr), lent to the
/// watchdog while idle (`loan` lent), handed to a Lease while in use (`loan` empty).
struct PooledConnection {
  PgConnPtr connection;
  std::uint64_t id = 0;  ///< names it in the watchdog's callbacks (which get no PGconn*)
  std::chrono::steady_clock::time_point opened_at;
  /// steady_clock::now() read after its latest lend() returned (the real clock, not the pool's
  /// injectable one: it is compared with ServerLost::evidence_at, which the ledger reads).
  std::chrono::steady_clock::time_point lent_at;
  Loan loan;
};

}  // namespace pgwd
