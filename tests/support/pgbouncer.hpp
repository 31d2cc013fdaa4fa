#pragma once

/// \file
/// A throwaway PgBouncer (Debian's pgbouncer) in front of a TestCluster: for the benchmarks, the
/// sizes that do not fit as PostgreSQL backends on a small machine (10,000 connections); for the
/// tests, what a watched connection sees through a pooler. It runs in the foreground as the OS
/// user postgres (it refuses root), in transaction pooling by default: an idle client holds no
/// server connection, so the benchmark's clients are PgBouncer's, and the server sees only the
/// statements PgBouncer forwards.
///
/// Clients log in as `user` (trust, or SCRAM against the verifier given); PgBouncer itself logs
/// into the server as `server_user` (which the cluster must trust from 127.0.0.1).

#include <chrono>
#include <memory>
#include <string>

#include "support/daemon_process.hpp"

namespace pgwd::testing {

struct PgBouncerSettings {
  std::string server_host = "127.0.0.1";
  int server_port = 0;
  std::string server_user;  ///< trusted by the server's pg_hba.conf
  std::string user;         ///< what clients log in as
  /// Empty: trust. Else the SCRAM verifier ("SCRAM-SHA-256$...") of `user`'s password.
  std::string scram_verifier;
  int max_clients = 12000;
  std::string pool_mode = "transaction";  ///< or "session"
  /// How long a client's query may wait for a server before PgBouncer drops it (its default).
  int query_wait_timeout_seconds = 120;
};

class PgBouncer {
 public:
  /// Starts it and waits (up to 30 s) until it accepts connections. Throws std::runtime_error
  /// with its log if it does not.
  explicit PgBouncer(PgBouncerSettings settings);
  /// SIGKILL (DaemonProcess), then the directory is removed.
  ~PgBouncer();
  PgBouncer(const PgBouncer&) = delete;
  PgBouncer& operator=(const PgBouncer&) = delete;

  int port() const noexcept { return port_; }
  /// Its process (single-threaded: the pid is also its one thread's id), e.g. for how long it
  /// waited for a CPU (CpuWaitSince in support/loop_gaps.hpp).
  int pid() const noexcept { return process_->pid(); }
  /// Stops it at once (SIGTERM: every client connection is closed) and starts it again on the
  /// same port: a "restart" of everything the clients see.
  void restart();
  /// Stops it (SIGTERM) and waits for it to exit.
  void stop();
  void start();
  /// Queries forwarded so far, all databases (SHOW STATS, total_query_count).
  long long total_queries() const;
  /// Client connections PgBouncer holds now (SHOW POOLS cl_active + cl_waiting + cl_idle... ).
  long long clients() const;

 private:
  std::string admin_conninfo() const;

  PgBouncerSettings settings_;
  std::string directory_;
  std::string ini_path_;
  int port_ = 0;
  std::unique_ptr<DaemonProcess> process_;
};

}  // namespace pgwd::testing
