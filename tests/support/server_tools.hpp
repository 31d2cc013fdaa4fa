#pragma once

/// Helpers shared by the throwaway clusters of the tests (TestCluster, StandbyCluster): where the
/// PostgreSQL tools are, running them as the `postgres` user, files, ports, and the blocking
/// admin connection over the unix socket (fine in tests, never in the library).

#include <libpq-fe.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "pg/handles.hpp"
#include "support/subprocess.hpp"
#include "support/test_cluster.hpp"

namespace pgwd::testing {

inline constexpr std::string_view kDefaultBindir = "/usr/lib/postgresql/15/bin";
inline constexpr std::string_view kAdminUser = "postgres";
inline constexpr std::string_view kAdminApplication = "pgwd_test_admin";
/// The LOGIN role every test cluster has (a standby inherits it through replication).
inline constexpr std::string_view kRole = "watchdog";
/// How many times a server (a cluster, a standby, dnsmasq) is started, each time on a new free
/// port: between pick_free_port() and the server's bind, a test running beside may take the port.
inline constexpr int kStartAttempts = 5;

std::string errno_message(std::string_view what, int error);
/// PostgreSQL's server binaries (pg_config --bindir, else Debian's path).
const std::string& bindir();
std::string runuser_path();
std::string random_hex(std::size_t length);
/// A TCP port on 127.0.0.1 that was free a moment ago.
int pick_free_port();
std::string make_temp_dir(const std::filesystem::path& parent,
                          std::string_view prefix = "pgwd-cluster");
/// The server's files must belong to the user it runs as.
void chown_to_postgres(const std::string& path);
std::string read_file(const std::string& path, std::uintmax_t offset = 0);
std::uintmax_t file_size_or_zero(const std::string& path);
/// Statements the server logged (log_statement = all, log_line_prefix '%m [%p] app=%a ') for
/// sessions with exactly this application_name: "statement: " (simple protocol) and "execute "
/// (extended protocol) entries.
int count_statements_in_log(const std::string& log_path, std::string_view application_name);
/// A postgresql.conf string literal.
std::string config_quote(std::string_view value);
/// Appends ` key=value` to a conninfo, quoting the value when it needs it.
void append_conninfo(std::string& out, std::string_view key, std::string_view value);
std::string_view mode_name(ShutdownMode mode);
/// What failed, its output's tail and the server log's tail since `log_offset`.
std::string failure_report(std::string_view what, const ProcessResult& result,
                           const std::string& log_path, std::uintmax_t log_offset);
std::string connection_error(PGconn* conn);
/// A superuser connection over the unix socket; throws with libpq's message on failure.
PgConnPtr admin_connect(const std::string& socket_dir, int port);
/// Takes ownership of `raw`; throws with the server's message unless it succeeded.
PgResultPtr checked_result(PGconn* conn, PGresult* raw, std::string_view sql);
/// First column of the first row, "" if none.
std::string first_value(const PGresult* result);

/// Conninfo for kRole over TCP.
std::string role_conninfo(std::string_view address, int port, std::string_view password,
                          std::string_view application_name);
/// Runs `sql` as superuser over the cluster's unix socket; throws with the server's message.
void admin_execute(const std::string& socket_dir, int port, std::string_view sql);
/// First column of the first row of `sql`, "" if none.
std::string admin_query_value(const std::string& socket_dir, int port, std::string_view sql);
/// `expression` evaluated for each backend of `application_name` (not the admin's), by pid.
std::vector<std::string> admin_per_backend(const std::string& socket_dir, int port,
                                           std::string_view expression,
                                           std::string_view application_name);

}  // namespace pgwd::testing
