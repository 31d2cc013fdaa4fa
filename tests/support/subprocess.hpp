#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgwd::testing {

/// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

struct ProcessResult {
  int exit_code;       // 128 + signal number if killed by a signal; 127 if it could not be started
  std::string output;  // stdout and stderr, interleaved as written
};

/// Starts `argv` (PATH searched) with stdin from /dev/null, stdout and stderr on `output_fd`, no
/// other inherited descriptor, an empty signal mask and default signal dispositions, in
/// `working_dir` if given, with `environment` (NAME=VALUE strings) or ours if null. Returns the
/// pid; the caller reaps it. Throws std::system_error.
pid_t spawn_child(const std::vector<std::string>& argv, int output_fd,
                  const std::string& working_dir = {},
                  const std::vector<std::string>* environment = nullptr);

/// Runs argv[0] (looked up in PATH) with the given arguments, no shell, stdin from /dev/null,
/// and waits for it. Safe to call from any thread: it uses posix_spawnp and touches no global
/// state. The child gets no file descriptors of ours other than 0-2 and default signal
/// handling, so a server it daemonizes does not hold on to our sockets. `working_dir`, when not
/// empty, is the child's current directory (useful when running as another OS user who cannot
/// enter ours).
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::string& working_dir = {});

/// run_process, but throws std::runtime_error("<cmd> failed (exit N): <output tail>") unless the
/// exit code is 0. Returns the output.
std::string run_checked(const std::vector<std::string>& argv, const std::string& working_dir = {});

/// The last `max_lines` lines of `text` (and at most a few KB), for error messages.
std::string tail_lines(std::string_view text, std::size_t max_lines = 40);

}  // namespace pgwd::testing
