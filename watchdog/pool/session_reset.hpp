#pragma once

#include <libpq-fe.h>

#include <chrono>

namespace pgwd {

/// What a connection given back to the pool is fit for.
enum class ReturnedState {
  reusable,         ///< idle, no transaction: lend it again
  rolled_back,      ///< was in a transaction (or a failed one): ROLLBACK succeeded, reusable
  broken,           ///< CONNECTION_BAD, transaction status UNKNOWN, or a query still running
  rollback_failed,  ///< ROLLBACK got an error or no answer within the timeout
};

/// Brings a connection given back by its user to idle, on the caller's thread: rolls back an
/// open transaction (PQsendQuery + poll(), so that a server that stopped answering costs at
/// most `rollback_timeout`, not the kernel's TCP timeout), and drains results nobody read.
/// Never closes the connection; the caller does, unless the answer is reusable/rolled_back.
ReturnedState reset_for_reuse(PGconn* connection, std::chrono::milliseconds rollback_timeout);

}  // namespace pgwd
