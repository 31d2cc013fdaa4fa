#include "support/test_cluster.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "pg/handles.hpp"
#include "support/initdb_template.hpp"
#include "support/server_tools.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kLoopback = "127.0.0.1";
constexpr std::string_view kStartTimeout = "60";

}  // namespace

TestCluster::TestCluster(ClusterSettings settings)
    : settings_(std::move(settings)), password_(random_hex(16)), as_postgres_(::geteuid() == 0) {
  try {
    create_directories();
    init_data_dir();
    first_start();
    create_role();
  } catch (...) {
    teardown();
    throw;
  }
}

TestCluster::~TestCluster() {
  teardown();
}

void TestCluster::create_directories() {
  fs::path parent = "/tmp";
  if (const char* root = std::getenv("PGWD_TEST_ROOT"); root != nullptr && *root != '\0') {
    parent = root;
    std::error_code ec;
    fs::create_directories(parent, ec);  // mkdtemp below reports a real problem
  }
  base_dir_ = make_temp_dir(parent);
  if (as_postgres_) chown_to_postgres(base_dir_);

  // The server's socket path "<dir>/.s.PGSQL.<port>" must fit in sockaddr_un::sun_path; a deep
  // $PGWD_TEST_ROOT would not, so the socket then gets its own short directory.
  constexpr std::size_t kSocketNameRoom = sizeof("/.s.PGSQL.65535.lock");
  if (base_dir_.size() + kSocketNameRoom > sizeof(sockaddr_un{}.sun_path)) {
    own_socket_dir_ = make_temp_dir("/tmp");
    if (as_postgres_) chown_to_postgres(own_socket_dir_);
    socket_dir_ = own_socket_dir_;
  } else {
    socket_dir_ = base_dir_;
  }
  data_dir_ = base_dir_ + "/data";
  log_path_ = base_dir_ + "/server.log";
}

std::vector<std::string> TestCluster::server_command(std::string_view tool,
                                                     std::vector<std::string> args) const {
  // initdb refuses to run as root, and the data directory must belong to the server's user.
  std::vector<std::string> command = settings_.command_prefix;
  if (as_postgres_)
    command.insert(command.end(), {runuser_path(), "-u", std::string(kAdminUser), "--"});
  command.push_back(bindir() + "/" + std::string(tool));
  for (auto& arg : args) command.push_back(std::move(arg));
  return command;
}

void TestCluster::run_initdb(const std::string& data_dir) const {
  // Not through server_command: the data directory is the same whatever the settings (the
  // template is shared by every cluster of the run), and initdb needs no network namespace.
  // WAL segments of 1 MB instead of 16: the template is copied for every cluster of the run
  // (about 500 in CI), and its first segment was 16 of its 39 MB; no test writes enough WAL
  // for the size to matter.
  std::vector<std::string> command;
  if (as_postgres_) command = {runuser_path(), "-u", std::string(kAdminUser), "--"};
  command.insert(command.end(), {bindir() + "/initdb", "-D", data_dir, "-U", std::string(kAdminUser),
                                 "--auth-local=trust", "--auth-host=scram-sha-256", "-N", "-E",
                                 "UTF8", "--locale=C", "--wal-segsize=1"});
  const ProcessResult result = run_process(command, base_dir_);
  if (result.exit_code != 0) {
    std::string message = failure_report("initdb", result, log_path_, 0);
    if (as_postgres_)
      message += "\n(the OS user postgres must be able to enter every directory above " +
                 data_dir + ")";
    throw std::runtime_error(message);
  }
}

void TestCluster::init_data_dir() {
  if (const auto template_dir =
          initdb_template([this](const std::string& data_dir) { run_initdb(data_dir); }))
    copy_initdb_template(*template_dir, data_dir_, as_postgres_);
  else
    run_initdb(data_dir_);
  if (!settings_.hba_lines.empty()) {
    // First match wins in pg_hba.conf: the test's lines go before initdb's.
    const std::string hba_path = data_dir_ + "/pg_hba.conf";
    std::string hba;
    for (const std::string& line : settings_.hba_lines) hba += line + "\n";
    hba += read_file(hba_path);
    std::ofstream(hba_path, std::ios::binary | std::ios::trunc)
        << hba;  // truncating keeps the owner
  }
  base_config_ = read_file(data_dir_ + "/postgresql.conf");
  if (base_config_.empty())
    throw std::runtime_error("initdb left no postgresql.conf in " + data_dir_);
}

void TestCluster::write_config() const {
  // Rewritten from initdb's original (not appended to) so a retry on another port leaves one
  // port line. Truncating keeps the file's owner, which matters when we are root.
  std::ofstream out(data_dir_ + "/postgresql.conf", std::ios::binary | std::ios::trunc);
  out << base_config_ << "\n# --- pgwd test harness ---\n"
      << "listen_addresses = " << config_quote(settings_.listen_address) << "\n"
      << "port = " << port_ << "\n"
      << "unix_socket_directories = " << config_quote(socket_dir_) << "\n"
      << "fsync = off\n"
      << "synchronous_commit = off\n"
      << "full_page_writes = off\n"
      << "log_statement = 'all'\n"
      << "log_line_prefix = '%m [%p] app=%a '\n"
      << "logging_collector = off\n"
      << "max_connections = 200\n";
  if (!settings_.extra_config.empty()) {
    out << "# --- ClusterSettings::extra_config ---\n";
    for (const auto& line : settings_.extra_config) out << line << "\n";
  }
  out.flush();
  if (!out) throw std::runtime_error("could not write " + data_dir_ + "/postgresql.conf");
}

void TestCluster::first_start() {
  // The port is free when picked but another test process may take it before the server binds
  // it; that shows in the log, and a new port fixes it.
  for (int attempt = 1;; ++attempt) {
    port_ = settings_.port != 0 ? settings_.port : pick_free_port();
    write_config();
    const std::uintmax_t log_offset = file_size_or_zero(log_path_);
    const ProcessResult result =
        run_process(server_command("pg_ctl", {"-D", data_dir_, "-l", log_path_, "-w", "-t",
                                              std::string(kStartTimeout), "start"}),
                    base_dir_);
    if (result.exit_code == 0) return;
    const std::string log = read_file(log_path_, log_offset);
    const bool port_taken = log.find("Address already in use") != std::string::npos ||
                            log.find("could not create any TCP/IP sockets") != std::string::npos;
    if (!port_taken || attempt == kStartAttempts) {
      std::string what = "pg_ctl start (port " + std::to_string(port_);
      if (port_taken) what += ", attempt " + std::to_string(attempt) + " with a fresh port";
      throw std::runtime_error(failure_report(what + ")", result, log_path_, log_offset));
    }
  }
}

namespace {}  // namespace

void TestCluster::create_role() const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  // Keep the password out of the server log twice over: this session does not log statements,
  // and the server only ever sees the SCRAM verifier.
  checked_result(conn.get(), PQexec(conn.get(), "SET log_statement = 'none'"), "SET log_statement");
  // The cluster runs with synchronous_commit=off for speed; the role must survive a crash
  // restart (pg_ctl restart -m immediate) that may come milliseconds later.
  checked_result(conn.get(), PQexec(conn.get(), "SET synchronous_commit = on"),
                 "SET synchronous_commit");
  const std::string role(kRole);
  const PgStringPtr verifier(
      PQencryptPasswordConn(conn.get(), password_.c_str(), role.c_str(), "scram-sha-256"));
  if (!verifier)
    throw std::runtime_error("PQencryptPasswordConn failed: " + connection_error(conn.get()));
  const PgStringPtr literal(
      PQescapeLiteral(conn.get(), verifier.get(), std::strlen(verifier.get())));
  if (!literal) throw std::runtime_error("PQescapeLiteral failed: " + connection_error(conn.get()));
  const std::string sql = "CREATE ROLE " + role + " LOGIN PASSWORD " + literal.get();
  checked_result(conn.get(), PQexec(conn.get(), sql.c_str()), "CREATE ROLE " + role);
}

void TestCluster::teardown() noexcept {
  try {
    {
      // A stopped process ignores the shutdown signals until it is continued; the postmaster
      // would wait 5 s before SIGKILLing it.
      const std::lock_guard lock(paused_mutex_);
      for (const int pid : paused_) ::kill(pid, SIGCONT);
      paused_.clear();
    }
    std::error_code ec;
    if (!data_dir_.empty() && fs::exists(data_dir_ + "/postmaster.pid", ec)) {
      const std::lock_guard lock(ctl_mutex_);
      (void)run_process(
          server_command("pg_ctl", {"-D", data_dir_, "-m", "immediate", "-w", "-t", "30", "stop"}),
          base_dir_);
    }
  } catch (...) {
    // Best effort: removing the directory below still matters.
  }
  std::error_code ec;
  if (!base_dir_.empty()) fs::remove_all(base_dir_, ec);
  if (!own_socket_dir_.empty()) fs::remove_all(own_socket_dir_, ec);
}

std::string TestCluster::conninfo(std::string_view application_name) const {
  return conninfo_with_password(application_name, password_);
}

std::string TestCluster::conninfo_with_password(std::string_view application_name,
                                                std::string_view password) const {
  return role_conninfo(settings_.listen_address, port_, password, application_name);
}

void TestCluster::execute(std::string_view sql) const {
  admin_execute(socket_dir_, port_, sql);
}

std::string TestCluster::query_value(std::string_view sql) const {
  return admin_query_value(socket_dir_, port_, sql);
}

std::vector<int> TestCluster::backend_pids(std::string_view application_name) const {
  std::vector<int> pids;
  for (const std::string& pid : admin_per_backend(socket_dir_, port_, "pid", application_name))
    pids.push_back(std::stoi(pid));
  return pids;
}

bool TestCluster::any_backend_left(std::string_view application_name,
                                   const std::vector<int>& pids) const {
  const std::vector<int> now = backend_pids(application_name);
  return std::any_of(pids.begin(), pids.end(),
                     [&](int pid) { return std::find(now.begin(), now.end(), pid) != now.end(); });
}

int TestCluster::terminate_backends(std::string_view application_name) const {
  const auto results =
      admin_per_backend(socket_dir_, port_, "pg_terminate_backend(pid)", application_name);
  return static_cast<int>(std::count(results.begin(), results.end(), "t"));
}

int TestCluster::postmaster_pid() const {
  std::ifstream in(data_dir_ + "/postmaster.pid");
  int pid = 0;
  if (!(in >> pid) || pid <= 0)
    throw std::runtime_error("the test cluster is not running (no postmaster.pid in " + data_dir_ +
                             ")");
  return pid;
}

void TestCluster::run_ctl(std::vector<std::string> args, std::string_view what) {
  const std::lock_guard lock(ctl_mutex_);
  const std::uintmax_t log_offset = file_size_or_zero(log_path_);
  const ProcessResult result = run_process(server_command("pg_ctl", std::move(args)), base_dir_);
  if (result.exit_code != 0)
    throw std::runtime_error(failure_report(what, result, log_path_, log_offset));
}

void TestCluster::stop(ShutdownMode mode) {
  run_ctl({"-D", data_dir_, "-m", std::string(mode_name(mode)), "-w", "-t",
           std::string(kStartTimeout), "stop"},
          "pg_ctl stop -m " + std::string(mode_name(mode)));
}

void TestCluster::start() {
  run_ctl({"-D", data_dir_, "-l", log_path_, "-w", "-t", std::string(kStartTimeout), "start"},
          "pg_ctl start (port " + std::to_string(port_) + ")");
}

void TestCluster::restart(ShutdownMode mode) {
  // -l again: without it pg_ctl restart sends the new server's output to its own stdout.
  run_ctl({"-D", data_dir_, "-l", log_path_, "-m", std::string(mode_name(mode)), "-w", "-t",
           std::string(kStartTimeout), "restart"},
          "pg_ctl restart -m " + std::string(mode_name(mode)));
}

void TestCluster::pause_backend(int pid) {
  // kill(0) or kill(-1) would stop our process group or every process we may signal.
  if (pid <= 0 || pid == ::getpid())
    throw std::invalid_argument("pause_backend: not a server process pid: " + std::to_string(pid));
  const std::lock_guard lock(paused_mutex_);
  if (::kill(pid, SIGSTOP) != 0)
    throw std::runtime_error(errno_message("SIGSTOP " + std::to_string(pid), errno));
  paused_.insert(pid);
}

void TestCluster::resume_backend(int pid) {
  if (pid <= 0 || pid == ::getpid())
    throw std::invalid_argument("resume_backend: not a server process pid: " + std::to_string(pid));
  const std::lock_guard lock(paused_mutex_);
  paused_.erase(pid);
  if (::kill(pid, SIGCONT) != 0)
    throw std::runtime_error(errno_message("SIGCONT " + std::to_string(pid), errno));
}

int TestCluster::count_statements(std::string_view application_name) const {
  return count_statements_in_log(log_path_, application_name);
}

}  // namespace pgwd::testing
