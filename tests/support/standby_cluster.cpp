#include "support/standby_cluster.hpp"

#include <libpq-fe.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "pg/handles.hpp"
#include "support/daemon_process.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDefaultBindir = "/usr/lib/postgresql/15/bin";
constexpr std::string_view kAdminUser = "postgres";
constexpr std::string_view kRole = "watchdog";
constexpr std::string_view kAdminApplication = "pgwd_test_admin";
constexpr int kStartAttempts = 5;
constexpr std::string_view kTimeout = "60";

std::string errno_message(std::string_view what, int error) {
  return std::string(what) + ": " + std::generic_category().message(error);
}

// Same lookup as TestCluster's: pg_config's bindir when it really holds the server tools.
const std::string& bindir() {
  static const std::string dir = [] {
    try {
      const ProcessResult result = run_process({"pg_config", "--bindir"});
      if (result.exit_code == 0) {
        std::string found = result.output;
        while (!found.empty() && (found.back() == '\n' || found.back() == '\r')) found.pop_back();
        std::error_code ec;
        if (!found.empty() && fs::exists(fs::path(found) / "pg_basebackup", ec) &&
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

std::string make_temp_dir(const fs::path& parent, std::string_view prefix) {
  std::string pattern = (parent / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error(errno_message("mkdtemp " + pattern, errno));
  return pattern;
}

void chown_to_postgres(const std::string& path) {
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

std::string config_quote(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

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

std::string connection_error(PGconn* conn) {
  std::string message = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

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
    throw std::runtime_error("admin connection to the standby (port " + port_text +
                             ") failed: " + connection_error(conn.get()));
  return conn;
}

PgResultPtr checked_result(PGconn* conn, PGresult* raw, std::string_view sql) {
  PgResultPtr result(raw);
  if (!result) throw std::runtime_error("standby admin query failed: " + connection_error(conn));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
    std::string message = PQresultErrorMessage(result.get());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw std::runtime_error("standby admin query failed: " + message +
                             " (query: " + std::string(sql.substr(0, 200)) + ")");
  }
  return result;
}

}  // namespace

StandbyCluster::StandbyCluster(const TestCluster& primary, StandbySettings settings)
    : settings_(std::move(settings)),
      password_(primary.password()),
      as_postgres_(::geteuid() == 0) {
  try {
    create_directories(primary);
    base_backup(primary);
    first_start();
  } catch (...) {
    teardown();
    throw;
  }
}

StandbyCluster::~StandbyCluster() {
  teardown();
}

void StandbyCluster::create_directories(const TestCluster& /*primary*/) {
  fs::path parent = "/tmp";
  if (const char* root = std::getenv("PGWD_TEST_ROOT"); root != nullptr && *root != '\0') {
    parent = root;
    std::error_code ec;
    fs::create_directories(parent, ec);
  }
  base_dir_ = make_temp_dir(parent, "pgwd-standby");
  if (as_postgres_) chown_to_postgres(base_dir_);
  constexpr std::size_t kSocketNameRoom = sizeof("/.s.PGSQL.65535.lock");
  if (base_dir_.size() + kSocketNameRoom > sizeof(sockaddr_un{}.sun_path)) {
    own_socket_dir_ = make_temp_dir("/tmp", "pgwd-standby-socket");
    if (as_postgres_) chown_to_postgres(own_socket_dir_);
    socket_dir_ = own_socket_dir_;
  } else {
    socket_dir_ = base_dir_;
  }
  data_dir_ = base_dir_ + "/data";
  log_path_ = base_dir_ + "/server.log";
}

std::vector<std::string> StandbyCluster::server_command(std::string_view tool,
                                                        std::vector<std::string> args) const {
  std::vector<std::string> command;
  if (as_postgres_) command = {runuser_path(), "-u", std::string(kAdminUser), "--"};
  command.push_back(bindir() + "/" + std::string(tool));
  for (auto& arg : args) command.push_back(std::move(arg));
  return command;
}

void StandbyCluster::base_backup(const TestCluster& primary) {
  // -c fast: an immediate checkpoint instead of a spread one; -R: standby.signal and
  // primary_conninfo (the primary's unix socket, user postgres) in postgresql.auto.conf.
  const ProcessResult result = run_process(
      server_command("pg_basebackup", {"-D", data_dir_, "-R", "-X", "stream", "-c", "fast", "-h",
                                       primary.socket_dir(), "-p", std::to_string(primary.port()),
                                       "-U", std::string(kAdminUser), "-w"}),
      base_dir_);
  if (result.exit_code != 0)
    throw std::runtime_error(
        failure_report("pg_basebackup of the primary on port " + std::to_string(primary.port()),
                       result, primary.log_path(), 0));
  auto_conf_ = read_file(data_dir_ + "/postgresql.auto.conf");
  if (auto_conf_.find("primary_conninfo") == std::string::npos)
    throw std::runtime_error("pg_basebackup -R wrote no primary_conninfo in " + data_dir_ +
                             "/postgresql.auto.conf");
}

void StandbyCluster::write_config() const {
  // postgresql.auto.conf is read after postgresql.conf (the primary's copy, with its port and
  // socket directory), so these win. Rewritten from pg_basebackup's version so that a retry on
  // another port leaves one port line; truncating keeps the owner.
  std::ofstream out(data_dir_ + "/postgresql.auto.conf", std::ios::binary | std::ios::trunc);
  out << auto_conf_ << "\n# --- pgwd test harness: standby ---\n"
      << "listen_addresses = " << config_quote(settings_.listen_address) << "\n"
      << "port = " << port_ << "\n"
      << "unix_socket_directories = " << config_quote(socket_dir_) << "\n"
      << "hot_standby = on\n";
  for (const auto& line : settings_.extra_config) out << line << "\n";
  out.flush();
  if (!out) throw std::runtime_error("could not write " + data_dir_ + "/postgresql.auto.conf");
}

void StandbyCluster::first_start() {
  for (int attempt = 1;; ++attempt) {
    port_ = settings_.port != 0 ? settings_.port : free_tcp_port();
    write_config();
    const std::uintmax_t log_offset = file_size_or_zero(log_path_);
    const ProcessResult result =
        run_process(server_command("pg_ctl", {"-D", data_dir_, "-l", log_path_, "-w", "-t",
                                              std::string(kTimeout), "start"}),
                    base_dir_);
    if (result.exit_code == 0) return;
    const std::string log = read_file(log_path_, log_offset);
    const bool port_taken = log.find("Address already in use") != std::string::npos ||
                            log.find("could not create any TCP/IP sockets") != std::string::npos;
    if (!port_taken || settings_.port != 0 || attempt == kStartAttempts)
      throw std::runtime_error(
          failure_report("pg_ctl start of the standby (port " + std::to_string(port_) + ")", result,
                         log_path_, log_offset));
  }
}

void StandbyCluster::teardown() noexcept {
  try {
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

std::string StandbyCluster::conninfo(std::string_view application_name) const {
  std::string out;
  append_conninfo(out, "host", settings_.listen_address);
  append_conninfo(out, "port", std::to_string(port_));
  append_conninfo(out, "user", kRole);
  append_conninfo(out, "password", password_);
  append_conninfo(out, "dbname", "postgres");
  append_conninfo(out, "application_name", application_name);
  return out;
}

void StandbyCluster::execute(std::string_view sql) const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  const std::string text(sql);
  checked_result(conn.get(), PQexec(conn.get(), text.c_str()), sql);
}

std::string StandbyCluster::query_value(std::string_view sql) const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  const std::string text(sql);
  const PgResultPtr result = checked_result(conn.get(), PQexec(conn.get(), text.c_str()), sql);
  if (PQntuples(result.get()) == 0 || PQnfields(result.get()) == 0 ||
      PQgetisnull(result.get(), 0, 0))
    return {};
  return PQgetvalue(result.get(), 0, 0);
}

std::vector<int> StandbyCluster::backend_pids(std::string_view application_name) const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  const char* sql =
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid() "
      "ORDER BY pid";
  const std::string name(application_name);
  const char* const params[] = {name.c_str()};
  const PgResultPtr result = checked_result(
      conn.get(), PQexecParams(conn.get(), sql, 1, nullptr, params, nullptr, nullptr, 0), sql);
  std::vector<int> pids;
  for (int row = 0; row < PQntuples(result.get()); ++row)
    pids.push_back(std::stoi(PQgetvalue(result.get(), row, 0)));
  return pids;
}

int StandbyCluster::terminate_backends(std::string_view application_name) const {
  const PgConnPtr conn = admin_connect(socket_dir_, port_);
  const char* sql =
      "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE application_name = $1 AND pid <> pg_backend_pid()";
  const std::string name(application_name);
  const char* const params[] = {name.c_str()};
  const PgResultPtr result = checked_result(
      conn.get(), PQexecParams(conn.get(), sql, 1, nullptr, params, nullptr, nullptr, 0), sql);
  return std::stoi(PQgetvalue(result.get(), 0, 0));
}

bool StandbyCluster::in_recovery() const {
  return query_value("SELECT pg_is_in_recovery()") == "t";
}

int StandbyCluster::postmaster_pid() const {
  std::ifstream in(data_dir_ + "/postmaster.pid");
  int pid = 0;
  if (!(in >> pid) || pid <= 0)
    throw std::runtime_error("the standby is not running (no postmaster.pid in " + data_dir_ + ")");
  return pid;
}

void StandbyCluster::run_ctl(std::vector<std::string> args, std::string_view what) {
  const std::lock_guard lock(ctl_mutex_);
  const std::uintmax_t log_offset = file_size_or_zero(log_path_);
  const ProcessResult result = run_process(server_command("pg_ctl", std::move(args)), base_dir_);
  if (result.exit_code != 0)
    throw std::runtime_error(failure_report(what, result, log_path_, log_offset));
}

void StandbyCluster::promote() {
  run_ctl({"-D", data_dir_, "-w", "-t", std::string(kTimeout), "promote"},
          "pg_ctl promote of the standby");
}

void StandbyCluster::stop(ShutdownMode mode) {
  run_ctl({"-D", data_dir_, "-m", std::string(mode_name(mode)), "-w", "-t", std::string(kTimeout),
           "stop"},
          "pg_ctl stop -m " + std::string(mode_name(mode)) + " of the standby");
}

void StandbyCluster::start() {
  run_ctl({"-D", data_dir_, "-l", log_path_, "-w", "-t", std::string(kTimeout), "start"},
          "pg_ctl start of the standby (port " + std::to_string(port_) + ")");
}

}  // namespace pgwd::testing
