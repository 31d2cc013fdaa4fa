#pragma once

#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pgwd::testing {

enum class ShutdownMode { smart, fast, immediate };

struct ClusterSettings {
  /// Extra postgresql.conf lines, e.g. "max_connections = 300". Written after the harness's
  /// own settings, so they win.
  std::vector<std::string> extra_config;
  /// Address the server listens on and conninfo() connects to; another one than loopback for a
  /// server inside a network namespace.
  std::string listen_address = "127.0.0.1";
  /// Prepended to every pg_ctl command, e.g. {"ip", "netns", "exec", "NAME"} to run the
  /// server inside a network namespace.
  std::vector<std::string> command_prefix;
  /// pg_hba.conf lines put before initdb's own (first match wins), e.g.
  /// "host all storm 127.0.0.1/32 trust".
  std::vector<std::string> hba_lines;
  /// Port to listen on; 0 picks a free one. Two clusters on different loopback addresses
  /// (127.0.0.1, 127.0.0.2) may share a port, as a host name moving between them needs.
  int port = 0;
};

/// A throwaway PostgreSQL cluster (initdb, once a run under $PGWD_TEST_ROOT: initdb_template.hpp;
/// pg_ctl) in a fresh temporary directory, under $PGWD_TEST_ROOT if set, else /tmp. It listens on 127.0.0.1 on a free port and on a unix
/// socket inside its directory, logs every statement (log_statement = all) to log_path(), and
/// has a LOGIN role "watchdog" with a random password (scram-sha-256 over TCP). As root, the
/// server runs as the OS user postgres.
///
/// Thread safety: stop/start/restart may run on a helper thread while the owning thread does
/// nothing else with the object; admin helpers open their own short-lived connection per call.
class TestCluster {
 public:
  /// Starts the cluster. Throws std::runtime_error (with the tail of the initdb/pg_ctl output
  /// and of the server log) on failure, leaving nothing behind.
  explicit TestCluster(ClusterSettings settings = {});
  /// Resumes paused processes, stops the server (immediate) if it runs, removes the directory.
  /// Never throws.
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;
  TestCluster(TestCluster&&) = delete;
  TestCluster& operator=(TestCluster&&) = delete;

  int port() const noexcept { return port_; }
  std::string host() const { return settings_.listen_address; }
  std::string user() const { return "watchdog"; }
  std::string password() const { return password_; }
  std::string socket_dir() const { return socket_dir_; }
  std::string log_path() const { return log_path_; }

  /// "host=127.0.0.1 port=N user=watchdog password=... dbname=postgres application_name=<app>"
  /// (values quoted as libpq requires when they contain spaces or quotes).
  std::string conninfo(std::string_view application_name) const;
  /// The same with another password, for authentication failure tests.
  std::string conninfo_with_password(std::string_view application_name,
                                     std::string_view password) const;

  // Admin helpers: superuser postgres over the unix socket, blocking, one connection per call
  // (application_name "pgwd_test_admin"). They throw std::runtime_error with the server's
  // message on failure.
  void execute(std::string_view sql) const;
  /// First column of the first row; "" if there is no row or it is NULL.
  std::string query_value(std::string_view sql) const;
  /// Backends in pg_stat_activity with exactly this application_name, ascending.
  std::vector<int> backend_pids(std::string_view application_name) const;
  /// Whether any of `pids` is still among this application_name's backends (terminated ones
  /// may still be exiting; others under the same name, a pool's replacements, do not count).
  bool any_backend_left(std::string_view application_name, const std::vector<int>& pids) const;
  /// pg_terminate_backend on each of them, without waiting for them to exit. Returns how many
  /// were signalled.
  int terminate_backends(std::string_view application_name) const;
  /// PID of the postmaster (from postmaster.pid); throws if the server is not running.
  int postmaster_pid() const;

  // Server control through pg_ctl -w (which waits for the server to be down/up). Paused
  // processes stay paused: an immediate shutdown then takes ~5 s (the postmaster SIGKILLs them),
  // smart/fast ones hang until they are resumed, so resume them first.
  void stop(ShutdownMode mode);
  /// Starts it again on the same port and data directory.
  void start();
  void restart(ShutdownMode mode);

  /// SIGSTOP / SIGCONT a process of this cluster (a backend, or the postmaster to simulate a
  /// hung server). Paused processes are resumed by the destructor.
  void pause_backend(int pid);
  void resume_backend(int pid);

  /// Statements the server executed for sessions with exactly this application_name, counted
  /// from the server log (count_statements_in_log).
  int count_statements(std::string_view application_name) const;

 private:
  void create_directories();
  /// initdb into `data_dir` (the template's or this cluster's own), as the server's OS user.
  void run_initdb(const std::string& data_dir) const;
  void init_data_dir();
  void write_config() const;
  void first_start();
  void create_role() const;
  void teardown() noexcept;
  std::vector<std::string> server_command(std::string_view tool,
                                          std::vector<std::string> args) const;
  void run_ctl(std::vector<std::string> args, std::string_view what);

  ClusterSettings settings_;
  std::string password_;
  bool as_postgres_;  // running as root: server tools run as the OS user postgres
  std::string base_dir_;
  std::string own_socket_dir_;  // a separate short dir, if base_dir_ is too long for a socket path
  std::string socket_dir_;
  std::string data_dir_;
  std::string log_path_;
  std::string base_config_;  // postgresql.conf as initdb wrote it
  int port_ = 0;

  std::mutex ctl_mutex_;  // one pg_ctl at a time
  std::mutex paused_mutex_;
  std::set<int> paused_;
};

}  // namespace pgwd::testing
