#include "support/initdb_template.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "support/server_tools.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

namespace fs = std::filesystem;

/// Holds an exclusive flock(2) on a file for its lifetime (the lock goes with the descriptor).
class ExclusiveFileLock {
 public:
  explicit ExclusiveFileLock(const std::string& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_.get() < 0) throw std::runtime_error(errno_message("open " + path, errno));
    while (::flock(fd_.get(), LOCK_EX) != 0)
      if (errno != EINTR) throw std::runtime_error(errno_message("flock " + path, errno));
  }

 private:
  UniqueFd fd_;
};

}  // namespace

std::optional<std::string> initdb_template(const InitdbRunner& run_initdb) {
  const char* root = std::getenv("PGWD_TEST_ROOT");
  if (root == nullptr || *root == '\0') return std::nullopt;
  const fs::path template_dir = fs::path(root) / "initdb-template";
  const ExclusiveFileLock lock((fs::path(root) / "initdb-template.lock").string());
  // PG_VERSION is the last thing checked for, and the template appears by one rename: a process
  // that died halfway leaves only a staging directory, which the next one replaces.
  if (fs::exists(template_dir / "PG_VERSION")) return template_dir.string();

  const std::string staging = make_temp_dir(root, "initdb-template-staging");
  if (::geteuid() == 0) chown_to_postgres(staging);
  try {
    run_initdb(staging + "/data");
    fs::rename(staging + "/data", template_dir);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw;
  }
  std::error_code ignored;
  fs::remove_all(staging, ignored);
  return template_dir.string();
}

void copy_initdb_template(const std::string& template_dir, const std::string& data_dir,
                          bool as_postgres) {
  std::vector<std::string> command;
  if (as_postgres) command = {runuser_path(), "-u", std::string(kAdminUser), "--"};
  command.insert(command.end(), {"cp", "-a", "--", template_dir, data_dir});
  run_checked(command, fs::path(data_dir).parent_path().string());
}

}  // namespace pgwd::testing
