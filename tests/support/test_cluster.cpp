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
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDefaultBindir = "/usr/lib/postgresql/15/bin";
constexpr std::string_view kAdminUser = "postgres";
constexpr std::string_view kRole = "watchdog";
constexpr std::string_view kAdminApplication = "pgwd_test_admin";
constexpr std::string_view kLoopback = "127.0.0.1";
constexpr int kStartAttempts = 5;
constexpr std::string_view kStartTimeout = "60";

std::string errno_message(std::string_view what, int error) {
  return std::string(what) + ": " + std::generic_category().message(error);
}

const std::string& bindir() {
  // pg_config may belong to another major version than the installed server, so only trust it
  // when the tools are really there.
  static const std::string dir = [] {
    try {
      const ProcessResult result = run_process({"pg_config", "--bindir"});
      if (result.exit_code == 0) {
        std::string found = result.output;
        while (!found.empty() && (found.back() == '\n' || found.back() == '\r')) found.pop_back();
        std::error_code ec;
        if (!found.empty() && fs::exists(fs::path(found) / "initdb", ec) &&
            fs::exists(fs::path(found) / "pg_ctl", ec))
          return found;
      }
    } catch (const std::exception&) {
      // Fall back to the Debian location below.
    }
    return std::string(kDefaultBindir);
  }();
  return dir;
}

std::string runuser_path() {
  for (const char* candidate : {"/usr/sbin/runuser", "/sbin/runuser"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return "runuser";
}

std::string random_hex(std::size_t length) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string out;
  out.reserve(length);
  for (std::size_t i = 0; i < length; ++i) out += kDigits[digit(device)];
  return out;
}

int pick_free_port() {
  const UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(errno_message("socket", errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  if (::inet_pton(AF_INET, std::string(kLoopback).c_str(), &address.sin_addr) != 1)
    throw std::runtime_error("inet_pton failed");
  sockaddr* generic = reinterpret_cast<sockaddr*>(&address);
  if (::bind(fd.get(), generic, sizeof address) != 0)
    throw std::runtime_error(errno_message("bind 127.0.0.1:0", errno));
  socklen_t length = sizeof address;
  if (::getsockname(fd.get(), generic, &length) != 0)
    throw std::runtime_error(errno_message("getsockname", errno));
  return ntohs(address.sin_port);
}

std::string make_temp_dir(const fs::path& parent) {
  std::string pattern = (parent / "pgwd-cluster-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error(errno_message("mkdtemp " + pattern, errno));
  return pattern;
}

void chown_to_postgres(const std::string& path) {
  // getpwnam_r, not getpwnam: the constructor may run on any thread.
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  const int rc = ::getpwnam_r("postgres", &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr)
    throw std::runtime_error(
        "running as root but there is no OS user postgres to run the server as");
  if (::chown(path.c_str(), entry.pw_uid, entry.pw_gid) != 0)
    throw std::runtime_error(errno_message("chown " + path, errno));
}

std::string read_file(const std::string& path, std::uintmax_t offset = 0) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::uintmax_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// postgresql.conf string literal.
std::string config_quote(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

// libpq key=value conninfo, quoting only when needed so the common case reads naturally.
void append_conninfo(std::string& out, std::string_view key, std::string_view value) {
  if (!out.empty()) out += ' ';
  out += key;
  out += '=';
  if (!value.empty() && value.find_first_of(" \t\n\r\f\v'\\") == std::string_view::npos) {
    out += value;
    return;
  }
  out += '\'';
  for (const char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
}

std::string_view mode_name(ShutdownMode mode) {
  switch (mode) {
    case ShutdownMode::smart:
      return "smart";
    case ShutdownMode::fast:
      return "fast";
    case ShutdownMode::immediate:
      return "immediate";
  }
  return "immediate";
}

std::string failure_report(std::string_view what, const ProcessResult& result,
                           const std::string& log_path, std::uintmax_t log_offset) {
  std::string message = std::string(what) + " failed (exit " + std::to_string(result.exit_code) +
                        ")\n--- output ---\n" + tail_lines(result.output);
  const std::string log = read_file(log_path, log_offset);
  if (!log.empty()) message += "\n--- server log " + log_path + " ---\n" + tail_lines(log);
  return message;
}

// Connection and query helpers for the admin side; errors carry the server's message.
std::string connection_error(PGconn* conn) {
  std::string message = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

PgResultPtr checked_result(PGconn* conn, PGresult* raw, std::string_view sql) {
  PgResultPtr result(raw);
  if (!result) throw std::runtime_error("admin query failed: " + connection_error(conn));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
    std::string message = PQresultErrorMessage(result.get());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    constexpr std::size_t kMaxSql = 200;
    std::string shown(sql.substr(0, kMaxSql));
    if (sql.size() > kMaxSql) shown += "...";
    throw std::runtime_error("admin query failed: " + message + " (query: " + shown + ")");
  }
  return result;
}

std::string first_value(const PGresult* result) {
  if (PQntuples(result) == 0 || PQnfields(result) == 0 || PQgetisnull(result, 0, 0)) return {};
  return PQgetvalue(result, 0, 0);
}

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
  if (as_postgres_) command.insert(command.end(), {runuser_path(), "-u", std::string(kAdminUser), "--"});
  command.push_back(bindir() + "/" + std::string(tool));
  for (auto& arg : args) command.push_back(std::move(arg));
  return command;
}

void TestCluster::init_data_dir() {
  const ProcessResult result =
      run_process(server_command("initdb", {"-D", data_dir_, "-U", std::string(kAdminUser),
                                            "--auth-local=trust", "--auth-host=scram-sha-256", "-N",
                                            "-E", "UTF8", "--locale=C"}),
                  base_dir_);
  if (result.exit_code != 0) {
    std::string message = failure_report("initdb", result, log_path_, 0);
    if (as_postgres_)
      message +=
          "\n(the OS user postgres must be able to enter every directory above " + base_dir_ + ")";
    throw std::runtime_error(message);
  }
  if (!settings_.hba_lines.empty()) {
    // First match wins in pg_hba.conf: the test's lines go before initdb's.
    const std::string hba_path = data_dir_ + "/pg_hba.conf";
    std::string hba;
    for (const std::string& line : settings_.hba_lines) hba += line + "\n";
    hba += read_file(hba_path);
    std::ofstream(hba_path, std::ios::binary | std::ios::trunc) << hba;  // truncating keeps the owner
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

namespace {

PgConnPtr admin_connect(const std::string& socket_dir, int port) {
  const std::string port_text = std::to_string(port);
  const std::string user(kAdminUser);
  const std::string application(kAdminApplication);
  const char* const keys[] = {
      "host", "port", "user", "dbname", "application_name", "connect_timeout", nullptr};
  const char* const values[] = {socket_dir.c_str(),
                                port_text.c_str(),
                                user.c_str(),
                                "postgres",
                                application.c_str(),
                                "10",
                                nullptr};
  PgConnPtr conn(PQconnectdbParams(keys, values, 0));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error("admin connection to the test cluster (port " + port_text +
                             ") failed: " + connection_error(conn.get()));
  return conn;
}

}  // namespace

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
  std::string out;
  append_conninfo(out, "host", settings_.listen_address);
  append_conninfo(out, "port", std::to_string(port_));
  append_conninfo(out, "user", kRole);
  append_conninfo(out, "password", password);
  append_conninfo(out, "dbname", "postgres");
  append_conninfo(out, "application_name", application_name);
  return out;
}

void TestCluster::execute(std::string_view sql) const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  const std::string text(sql);
  checked_result(conn.get(), PQexec(conn.get(), text.c_str()), sql);
}

std::string TestCluster::query_value(std::string_view sql) const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  const std::string text(sql);
  const PgResultPtr result = checked_result(conn.get(), PQexec(conn.get(), text.c_str()), sql);
  return first_value(result.get());
}

std::vector<int> TestCluster::backend_pids(std::string_view application_name) const {
  std::vector<int> pids;
  for (const std::string& pid : per_backend("pid", application_name))
    pids.push_back(std::stoi(pid));
  return pids;
}

int TestCluster::terminate_backends(std::string_view application_name) const {
  const auto results = per_backend("pg_terminate_backend(pid)", application_name);
  return static_cast<int>(std::count(results.begin(), results.end(), "t"));
}

std::vector<std::string> TestCluster::per_backend(std::string_view expression,
                                                  std::string_view application_name) const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  const std::string sql =
      "SELECT " + std::string(expression) +
      " FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid() "
      "ORDER BY pid";
  const std::string name(application_name);
  const char* const params[] = {name.c_str()};
  const PgResultPtr result = checked_result(
      conn.get(), PQexecParams(conn.get(), sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0),
      sql);
  std::vector<std::string> values;
  for (int row = 0; row < PQntuples(result.get()); ++row)
    values.emplace_back(PQgetvalue(result.get(), row, 0));
  return values;
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
  // log_line_prefix is '%m [%p] app=%a ', so "] app=<name> LOG:  " only matches the exact name.
  const std::string marker = "] app=" + std::string(application_name) + " LOG:  ";
  std::istringstream log(read_file(log_path_));
  int count = 0;
  for (std::string line; std::getline(log, line);) {
    const std::size_t at = line.find(marker);
    if (at == std::string::npos) continue;
    const std::string_view message = std::string_view(line).substr(at + marker.size());
    if (message.starts_with("statement: ") || message.starts_with("execute ")) ++count;
  }
  return count;
}

}  // namespace pgwd::testing
