#pragma once

#include <optional>

#include "pgwd/events.hpp"

namespace pgwd {

/// Which server stands behind a pooled target, as its connections' round trips see it: tells a
/// restart or a failover behind the pool from a round trip that merely got another server
/// connection (in transaction pooling every round trip may). One per target, not per
/// connection, so one change is reported once, however many connections see it after.
///
/// A server is known by its address and its postmaster's start time: a restart keeps the first
/// and changes the second; a failover changes the first. A crash that PostgreSQL recovers from
/// without a new postmaster (a backend killed by a signal) keeps both, and is not seen here.
class ServerIdentityWatch {
 public:
  /// The change since the last server seen, if any; the first server seen is no change. Servers
  /// with neither field known (direct targets, a failed role question) are ignored.
  std::optional<ServerChange> saw(const ServerInfo& server);
  /// The server seen before the change saw() just reported, else the last one seen.
  const ServerInfo& previous() const noexcept { return previous_; }

 private:
  std::optional<ServerInfo> last_;
  ServerInfo previous_;
};

}  // namespace pgwd
