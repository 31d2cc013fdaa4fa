#include "support/standby_cluster.hpp"

#include <libpq-fe.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
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
#include "support/server_tools.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTimeout = "60";

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
  return role_conninfo(settings_.listen_address, port_, password_, application_name);
}

void StandbyCluster::execute(std::string_view sql) const {
  admin_execute(socket_dir_, port_, sql);
}

std::string StandbyCluster::query_value(std::string_view sql) const {
  return admin_query_value(socket_dir_, port_, sql);
}

std::vector<int> StandbyCluster::backend_pids(std::string_view application_name) const {
  std::vector<int> pids;
  for (const std::string& pid : admin_per_backend(socket_dir_, port_, "pid", application_name))
    pids.push_back(std::stoi(pid));
  return pids;
}

int StandbyCluster::terminate_backends(std::string_view application_name) const {
  const auto results =
      admin_per_backend(socket_dir_, port_, "pg_terminate_backend(pid)", application_name);
  return static_cast<int>(std::count(results.begin(), results.end(), "t"));
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

int StandbyCluster::count_statements(std::string_view application_name) const {
  return count_statements_in_log(log_path_, application_name);
}

}  // namespace pgwd::testing
