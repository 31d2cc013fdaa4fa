#include "support/pgbouncer.hpp"

#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "pg/handles.hpp"
#include "support/server_tools.hpp"

namespace pgwd::testing {
namespace {

constexpr const char* kBouncerAdmin = "bench_admin";

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("could not write " + path);
}

/// Blocking, on the admin console; throws with libpq's message.
PgConnPtr connect_blocking(const std::string& conninfo) {
  PgConnPtr conn(PQconnectdb(conninfo.c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error("pgbouncer admin console: " + connection_error(conn.get()));
  return conn;
}

/// The sum of a column over the rows of the forwarded databases (the admin console's own
/// "pgbouncer" row counts our SHOW commands).
long long sum_column(const PGresult* result, const char* column) {
  const int field = PQfnumber(result, column);
  const int database = PQfnumber(result, "database");
  long long sum = 0;
  if (field < 0 || database < 0) return -1;
  for (int row = 0; row < PQntuples(result); ++row) {
    if (std::string_view(PQgetvalue(result, row, database)) == "pgbouncer") continue;
    sum += std::atoll(PQgetvalue(result, row, field));
  }
  return sum;
}

}  // namespace

PgBouncer::PgBouncer(PgBouncerSettings settings) : settings_(std::move(settings)) {
  // Under $TMPDIR (scripts/bench points it at its own directory, which it cleans up).
  std::string pattern =
      (std::filesystem::temp_directory_path() / "pgwd-bench-pgbouncer.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  directory_ = pattern;
  ::chmod(directory_.c_str(), 0755);
  port_ = free_tcp_port();
  ini_path_ = directory_ + "/pgbouncer.ini";
  const std::string client_method = settings_.scram_verifier.empty() ? "trust" : "scram-sha-256";
  // One line of code per line of the files.
  // clang-format off
  write_file(directory_ + "/hba.conf",
             "host all " + std::string(kBouncerAdmin) + " 127.0.0.1/32 trust\n"
             "host all " + settings_.user + " 127.0.0.1/32 " + client_method + "\n");
  write_file(directory_ + "/userlist.txt", "\"" + std::string(kBouncerAdmin) + "\" \"\"\n\"" +
                                               settings_.user + "\" \"" + settings_.scram_verifier +
                                               "\"\n");
  write_file(ini_path_,
             "[databases]\n"
             "postgres = host=" + settings_.server_host + " port=" + std::to_string(settings_.server_port) +
             " dbname=postgres user=" + settings_.server_user + "\n"
             "[pgbouncer]\n"
             "listen_addr = 127.0.0.1\n"
             "listen_port = " + std::to_string(port_) + "\n"
             "unix_socket_dir =\n"
             "auth_type = hba\n"
             "auth_hba_file = " + directory_ + "/hba.conf\n"
             "auth_file = " + directory_ + "/userlist.txt\n"
             "admin_users = " + kBouncerAdmin + "\n"
             "pool_mode = " + settings_.pool_mode + "\n"
             "max_client_conn = " + std::to_string(settings_.max_clients) + "\n"
             "default_pool_size = 20\n"
             "query_wait_timeout = " + std::to_string(settings_.query_wait_timeout_seconds) + "\n"
             "logfile = " + directory_ + "/pgbouncer.log\n"
             "pidfile = " + directory_ + "/pgbouncer.pid\n"
             "log_connections = 0\n"
             "log_disconnections = 0\n"
             "server_login_retry = 0\n");
  // clang-format on
  if (::geteuid() == 0) {
    for (const auto& entry : std::filesystem::directory_iterator(directory_))
      chown_to_postgres(entry.path().string());
    chown_to_postgres(directory_);
  }
  start();
}

PgBouncer::~PgBouncer() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string PgBouncer::admin_conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=pgbouncer user=" + kBouncerAdmin;
}

void PgBouncer::start() {
  std::vector<std::string> argv;
  // setpriv execs pgbouncer itself (no process in between), so signals reach it directly.
  if (::geteuid() == 0)
    argv = {"--reuid=postgres", "--regid=postgres", "--init-groups", "pgbouncer", ini_path_};
  else
    argv = {ini_path_};
  process_ = std::make_unique<DaemonProcess>(::geteuid() == 0 ? "setpriv" : "pgbouncer", argv);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    PgConnPtr conn(PQconnectdb(admin_conninfo().c_str()));
    if (conn && PQstatus(conn.get()) == CONNECTION_OK) return;
    if (!process_->running() || std::chrono::steady_clock::now() > deadline) {
      std::ifstream log(directory_ + "/pgbouncer.log");
      const std::string text((std::istreambuf_iterator<char>(log)),
                             std::istreambuf_iterator<char>());
      throw std::runtime_error("pgbouncer did not start:\n" + process_->output() + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // nothing else to wait on
  }
}

void PgBouncer::stop() {
  process_->send_signal(SIGTERM);
  if (!process_->wait_exit(std::chrono::seconds(30)))
    throw std::runtime_error("pgbouncer did not stop");
}

void PgBouncer::restart() {
  stop();
  start();
}

long long PgBouncer::total_queries() const {
  PgConnPtr conn = connect_blocking(admin_conninfo());
  const PgResultPtr result(PQexec(conn.get(), "SHOW STATS"));
  return sum_column(result.get(), "total_query_count");
}

long long PgBouncer::clients() const {
  PgConnPtr conn = connect_blocking(admin_conninfo());
  const PgResultPtr result(PQexec(conn.get(), "SHOW POOLS"));
  long long sum = 0;
  for (const char* column : {"cl_active", "cl_waiting"}) sum += sum_column(result.get(), column);
  return sum;
}

}  // namespace pgwd::testing
