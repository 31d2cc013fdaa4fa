#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "support/test_cluster.hpp"

namespace pgwd::testing {

struct StandbySettings {
  /// Address the standby listens on and conninfo() connects to.
  std::string listen_address = "127.0.0.1";
  /// Port to listen on; 0 picks a free one.
  int port = 0;
  /// Extra lines appended to the standby's configuration (after the harness's own).
  std::vector<std::string> extra_config;
};

/// A streaming hot standby of a running TestCluster, in a fresh temporary directory next to
/// the primary's (under $PGWD_TEST_ROOT if set, else /tmp):
/// `pg_basebackup -R -X stream -c fast` over the primary's unix socket as the superuser
/// postgres (initdb's "local replication all trust" line lets it in), then its own port,
/// listen_addresses and unix socket directory, then `pg_ctl -w start`. As root, the tools and the
/// server run as the OS user postgres, like the primary's.
///
/// Everything on the primary at the time of the base backup is there, the role "watchdog" and
/// its password included, so conninfo() uses the primary's password. The primary must stay up
/// while the constructor runs; afterwards it may stop (the standby keeps serving read-only).
///
/// Thread safety: like TestCluster, promote/stop/start may run on a helper thread while the
/// owning thread does nothing else with the object.
class StandbyCluster {
 public:
  /// Throws std::runtime_error (with the tail of the tool's output and of the server log) on
  /// failure, leaving nothing behind.
  explicit StandbyCluster(const TestCluster& primary, StandbySettings settings = {});
  /// Stops the server (immediate) if it runs and removes its directories. Never throws.
  ~StandbyCluster();
  StandbyCluster(const StandbyCluster&) = delete;
  StandbyCluster& operator=(const StandbyCluster&) = delete;
  StandbyCluster(StandbyCluster&&) = delete;
  StandbyCluster& operator=(StandbyCluster&&) = delete;

  int port() const noexcept { return port_; }
  std::string host() const { return settings_.listen_address; }
  std::string user() const { return "watchdog"; }
  std::string password() const { return password_; }
  std::string socket_dir() const { return socket_dir_; }
  std::string log_path() const { return log_path_; }
  std::string data_dir() const { return data_dir_; }

  /// "host=<listen_address> port=N user=watchdog password=... dbname=postgres
  /// application_name=<app>", like TestCluster::conninfo.
  std::string conninfo(std::string_view application_name) const;

  // Admin helpers: superuser postgres over the unix socket, one connection per call. While the
  // server is a standby only read-only statements work. Throw std::runtime_error on failure.
  void execute(std::string_view sql) const;
  std::string query_value(std::string_view sql) const;
  std::vector<int> backend_pids(std::string_view application_name) const;
  int terminate_backends(std::string_view application_name) const;
  /// Statements logged for sessions with exactly this application_name (the configuration comes
  /// from the primary's base backup: log_statement = all), as TestCluster::count_statements.
  int count_statements(std::string_view application_name) const;
  /// pg_is_in_recovery(): true while a standby, false once promoted.
  bool in_recovery() const;
  int postmaster_pid() const;

  /// `pg_ctl promote -w`: returns once the server is out of recovery (pg_ctl polls the control
  /// file every 100 ms, so up to ~100 ms after that happened).
  void promote();
  void stop(ShutdownMode mode);
  void start();

 private:
  void create_directories(const TestCluster& primary);
  void base_backup(const TestCluster& primary);
  void write_config() const;
  void first_start();
  void teardown() noexcept;
  std::vector<std::string> server_command(std::string_view tool,
                                          std::vector<std::string> args) const;
  void run_ctl(std::vector<std::string> args, std::string_view what);

  StandbySettings settings_;
  std::string password_;
  bool as_postgres_;
  std::string base_dir_;
  std::string own_socket_dir_;
  std::string socket_dir_;
  std::string data_dir_;
  std::string log_path_;
  std::string auto_conf_;  // postgresql.auto.conf as pg_basebackup -R wrote it
  int port_ = 0;

  std::mutex ctl_mutex_;
};

}  // namespace pgwd::testing
