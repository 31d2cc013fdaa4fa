#include "support/subprocess.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace pgwd::testing {
namespace {

constexpr std::size_t kMaxTailChars = 4000;

class SpawnFileActions {
 public:
  SpawnFileActions() {
    if (const int rc = posix_spawn_file_actions_init(&actions_); rc != 0)
      throw std::system_error(rc, std::generic_category(), "posix_spawn_file_actions_init");
  }
  ~SpawnFileActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnFileActions(const SpawnFileActions&) = delete;
  SpawnFileActions& operator=(const SpawnFileActions&) = delete;
  posix_spawn_file_actions_t* get() noexcept { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class SpawnAttr {
 public:
  SpawnAttr() {
    if (const int rc = posix_spawnattr_init(&attr_); rc != 0)
      throw std::system_error(rc, std::generic_category(), "posix_spawnattr_init");
  }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr_); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  posix_spawnattr_t* get() noexcept { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

void check_spawn_call(int rc, const char* what) {
  if (rc != 0) throw std::system_error(rc, std::generic_category(), what);
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    out += arg;
  }
  return out;
}

std::string read_all(int fd) {
  std::string out;
  if (::lseek(fd, 0, SEEK_SET) < 0) return out;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  return out;
}

}  // namespace

pid_t spawn_child(const std::vector<std::string>& argv, int output_fd,
                  const std::string& working_dir, const std::vector<std::string>* environment) {
  if (argv.empty()) throw std::invalid_argument("spawn_child: empty argv");
  SpawnFileActions actions;
  check_spawn_call(posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0),
                   "posix_spawn_file_actions_addopen");
  check_spawn_call(posix_spawn_file_actions_adddup2(actions.get(), output_fd, 1),
                   "posix_spawn_file_actions_adddup2");
  check_spawn_call(posix_spawn_file_actions_adddup2(actions.get(), output_fd, 2),
                   "posix_spawn_file_actions_adddup2");
  if (!working_dir.empty())
    check_spawn_call(posix_spawn_file_actions_addchdir_np(actions.get(), working_dir.c_str()),
                     "posix_spawn_file_actions_addchdir_np");
  // Other threads of a test open sockets without O_CLOEXEC at times (libevent, the code under
  // test); a postmaster or daemon started through us would keep them open for its whole life.
  check_spawn_call(posix_spawn_file_actions_addclosefrom_np(actions.get(), 3),
                   "posix_spawn_file_actions_addclosefrom_np");

  // The test process may block or ignore signals (SIGPIPE, SIGCHLD); a server or daemon started
  // through us must see them with their default meaning, or stopping and reaping misbehave.
  SpawnAttr attr;
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  for (const int sig : {SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2})
    sigaddset(&default_signals, sig);
  check_spawn_call(posix_spawnattr_setsigmask(attr.get(), &empty_mask),
                   "posix_spawnattr_setsigmask");
  check_spawn_call(posix_spawnattr_setsigdefault(attr.get(), &default_signals),
                   "posix_spawnattr_setsigdefault");
  check_spawn_call(
      posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF),
      "posix_spawnattr_setflags");

  const auto pointers = [](const std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
  };
  std::vector<char*> args = pointers(argv);
  std::vector<char*> env = environment ? pointers(*environment) : std::vector<char*>{};
  pid_t pid = 0;
  if (const int rc = posix_spawnp(&pid, args[0], actions.get(), attr.get(), args.data(),
                                  environment ? env.data() : environ);
      rc != 0)
    throw std::system_error(rc, std::generic_category(), "posix_spawnp " + argv[0]);
  return pid;
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& working_dir) {
  if (argv.empty()) throw std::invalid_argument("run_process: empty argv");

  // An anonymous memory file rather than a pipe: we read it only after the child exited, so a
  // grandchild that somehow kept the descriptor (a daemonized server) cannot make us block, and
  // a chatty child cannot fill a pipe buffer while we wait for it.
  const UniqueFd output(::memfd_create("pgwd-subprocess-output", MFD_CLOEXEC));
  if (output.get() < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");

  pid_t pid = 0;
  try {
    pid = spawn_child(argv, output.get(), working_dir);
  } catch (const std::system_error& e) {
    if (e.code().category() != std::generic_category() ||
        std::string_view(e.what()).find("posix_spawnp") == std::string_view::npos)
      throw;
    return {127, "could not start " + argv[0] + ": " + e.code().message()};
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
  }
  int exit_code = 0;
  if (WIFEXITED(status)) {
    exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code = 128 + WTERMSIG(status);
  }
  return {exit_code, read_all(output.get())};
}

std::string run_checked(const std::vector<std::string>& argv, const std::string& working_dir) {
  ProcessResult result = run_process(argv, working_dir);
  if (result.exit_code != 0) {
    throw std::runtime_error(command_line(argv) + " failed (exit " +
                             std::to_string(result.exit_code) + "): " + tail_lines(result.output));
  }
  return std::move(result.output);
}

std::string tail_lines(std::string_view text, std::size_t max_lines) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::size_t start = text.size();
  for (std::size_t lines = 0; lines < max_lines && start > 0; ++lines) {
    const std::size_t newline = text.rfind('\n', start - 1);
    if (newline == std::string_view::npos) {
      start = 0;
      break;
    }
    start = newline;
  }
  // `start` points either at a line's first character or at the newline before it.
  if (start < text.size() && text[start] == '\n') ++start;
  if (text.size() - start > kMaxTailChars) start = text.size() - kMaxTailChars;
  return std::string(text.substr(start));
}

}  // namespace pgwd::testing
