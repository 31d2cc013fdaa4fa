#include "support/server_tools.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace pgwd::testing {

namespace fs = std::filesystem;

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
  if (::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr) != 1)
    throw std::runtime_error("inet_pton failed");
  sockaddr* generic = reinterpret_cast<sockaddr*>(&address);
  if (::bind(fd.get(), generic, sizeof address) != 0)
    throw std::runtime_error(errno_message("bind 127.0.0.1:0", errno));
  socklen_t length = sizeof address;
  if (::getsockname(fd.get(), generic, &length) != 0)
    throw std::runtime_error(errno_message("getsockname", errno));
  return ntohs(address.sin_port);
}

std::string make_temp_dir(const fs::path& parent, std::string_view prefix) {
  std::string pattern = (parent / (std::string(prefix) + "-XXXXXX")).string();
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

std::string read_file(const std::string& path, std::uintmax_t offset) {
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

std::string role_conninfo(std::string_view address, int port, std::string_view password,
                          std::string_view application_name) {
  std::string out;
  append_conninfo(out, "host", address);
  append_conninfo(out, "port", std::to_string(port));
  append_conninfo(out, "user", kRole);
  append_conninfo(out, "password", password);
  append_conninfo(out, "dbname", "postgres");
  append_conninfo(out, "application_name", application_name);
  return out;
}

void admin_execute(const std::string& socket_dir, int port, std::string_view sql) {
  const PgConnPtr conn = admin_connect(socket_dir, port);
  const std::string text(sql);
  checked_result(conn.get(), PQexec(conn.get(), text.c_str()), sql);
}

std::string admin_query_value(const std::string& socket_dir, int port, std::string_view sql) {
  const PgConnPtr conn = admin_connect(socket_dir, port);
  const std::string text(sql);
  const PgResultPtr result = checked_result(conn.get(), PQexec(conn.get(), text.c_str()), sql);
  return first_value(result.get());
}

std::vector<std::string> admin_per_backend(const std::string& socket_dir, int port,
                                           std::string_view expression,
                                           std::string_view application_name) {
  const PgConnPtr conn = admin_connect(socket_dir, port);
  const std::string sql = "SELECT " + std::string(expression) +
                          " FROM pg_stat_activity WHERE application_name = $1 AND pid <> "
                          "pg_backend_pid() ORDER BY pid";
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

int count_statements_in_log(const std::string& log_path, std::string_view application_name) {
  // log_line_prefix is '%m [%p] app=%a ', so "] app=<name> LOG:  " only matches the exact name.
  const std::string marker = "] app=" + std::string(application_name) + " LOG:  ";
  std::istringstream log(read_file(log_path));
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
