#include "support/daemon_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "support/poll_deadline.hpp"
#include "support/server_tools.hpp"
#include "support/subprocess.hpp"

extern char** environ;

namespace pgwd::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Without a pidfd or an inotify watch, how often waiting loops look again.
constexpr std::chrono::milliseconds kFallbackPollInterval{10};

[[noreturn]] void throw_errno(std::string_view what, int error) {
  throw std::runtime_error(errno_message(what, error));
}

Clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  return Clock::now() + std::max(timeout, std::chrono::milliseconds::zero());
}

int pidfd_open_or_minus_one(pid_t pid) {
#ifdef SYS_pidfd_open
  // The fd is always close-on-exec. Our child cannot be recycled before we reap it, so there is
  // no race between posix_spawn and this call.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

std::string make_output_file(int& fd) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  constexpr std::string_view kSuffix = ".log";
  std::string pattern = (dir / "pgwd-daemon-XXXXXX").string() + std::string(kSuffix);
  // O_APPEND: the child's stdout and stderr share this description, and a line written to one
  // never overwrites one written to the other.
  fd = ::mkostemps(pattern.data(), static_cast<int>(kSuffix.size()), O_APPEND | O_CLOEXEC);
  if (fd < 0) throw_errno("mkostemps " + pattern, errno);
  return pattern;
}

/// The inherited environment with `overrides` replacing or adding entries.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    const std::string key(text.substr(0, equals));
    if (!overrides.contains(key)) out.emplace_back(text);
  }
  for (const auto& [key, value] : overrides) {
    if (key.empty() || key.find('=') != std::string::npos)
      throw std::invalid_argument("DaemonProcess: bad environment variable name '" + key + "'");
    out.push_back(key + "=" + value);
  }
  return out;
}

int exit_code_from_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

/// Reads `fd` from `offset` to its current end, appending to `out`; advances `offset`.
void read_from(int fd, off_t& offset, std::string& out) {
  std::array<char, 16384> buffer{};
  for (;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (n > 0) {
      out.append(buffer.data(), static_cast<std::size_t>(n));
      offset += n;
    } else if (n == 0 || errno != EINTR) {
      return;
    }
  }
}

}  // namespace

DaemonProcess::DaemonProcess(std::string binary, std::vector<std::string> args,
                             std::map<std::string, std::string> env)
    : binary_(std::move(binary)) {
  if (binary_.empty()) throw std::invalid_argument("DaemonProcess: empty binary");
  std::vector<std::string> environment = child_environment(env);
  std::vector<std::string> argv;
  argv.reserve(args.size() + 1);
  argv.push_back(binary_);
  for (auto& arg : args) argv.push_back(std::move(arg));

  output_path_ = make_output_file(output_fd_);
  try {
    pid_ = spawn_child(argv, output_fd_, {}, &environment);
  } catch (...) {
    ::close(output_fd_);
    ::unlink(output_path_.c_str());
    throw;
  }
  pidfd_ = pidfd_open_or_minus_one(pid_);  // -1: wait_exit falls back to polling waitpid
}

DaemonProcess::~DaemonProcess() {
  {
    const std::lock_guard lock(mutex_);
    if (!exit_code_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      exit_code_ = exit_code_from_status(status);
    }
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  ::close(output_fd_);
  ::unlink(output_path_.c_str());
}

bool DaemonProcess::try_reap_locked(const std::function<void()>& before_reap) {
  if (exit_code_) return true;
  if (before_reap) {
    // Exited but not reaped yet (WNOWAIT): a zombie, whose /proc entry still holds its main
    // thread's statistics.
    siginfo_t info{};
    int rc = 0;
    do {
      rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0 && info.si_pid != pid_) return false;  // still running: not now, not below
    if (rc == 0) before_reap();
  }
  int status = 0;
  pid_t rc = 0;
  do {
    rc = ::waitpid(pid_, &status, WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return false;
  // rc < 0 (ECHILD): someone else reaped it (a waitpid(-1) elsewhere). It is gone all the same;
  // never signal that pid again.
  exit_code_ = rc == pid_ ? exit_code_from_status(status) : -1;
  return true;
}

bool DaemonProcess::try_reap() {
  const std::lock_guard lock(mutex_);
  return try_reap_locked();
}

void DaemonProcess::send_signal(int signal) {
  const std::lock_guard lock(mutex_);
  if (exit_code_) return;  // reaped: the pid may belong to someone else by now
  if (::kill(pid_, signal) != 0)
    throw_errno("kill(" + std::to_string(pid_) + ", " + std::to_string(signal) + ")", errno);
}

bool DaemonProcess::running() {
  return !try_reap();
}

std::optional<int> DaemonProcess::wait_exit(std::chrono::milliseconds timeout,
                                            const std::function<void()>& before_reap) {
  const Clock::time_point deadline = deadline_after(timeout);
  if (pidfd_ < 0) return wait_exit_polling(deadline, before_reap);
  for (;;) {
    {
      const std::lock_guard lock(mutex_);
      if (try_reap_locked(before_reap)) return exit_code_;
    }
    const int wait_ms = remaining_ms(deadline);
    if (wait_ms == 0) return std::nullopt;
    pollfd fd{pidfd_, POLLIN, 0};
    if (::poll(&fd, 1, wait_ms) < 0 && errno != EINTR) throw_errno("poll(pidfd)", errno);
    // Readable (exited), timed out or interrupted: the top of the loop sorts it out.
  }
}

std::optional<int> DaemonProcess::wait_exit_polling(Clock::time_point deadline,
                                                    const std::function<void()>& before_reap) {
  for (;;) {
    {
      const std::lock_guard lock(mutex_);
      if (try_reap_locked(before_reap)) return exit_code_;
    }
    const int wait_ms = remaining_ms(deadline);
    if (wait_ms == 0) return std::nullopt;
    std::this_thread::sleep_for(
        std::min(std::chrono::milliseconds(wait_ms), kFallbackPollInterval));
  }
}

std::string DaemonProcess::output() const {
  std::string out;
  off_t offset = 0;
  read_from(output_fd_, offset, out);
  return out;
}

bool DaemonProcess::wait_for_output(std::string_view needle, std::chrono::milliseconds timeout) {
  if (needle.empty()) return true;
  const Clock::time_point deadline = deadline_after(timeout);

  // The watch goes in before the first read, so a write between that read and poll() still
  // wakes us up.
  const UniqueFd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  bool watching = false;
  if (inotify.get() >= 0)
    watching = ::inotify_add_watch(inotify.get(), output_path_.c_str(), IN_MODIFY) >= 0;

  std::string seen;
  off_t offset = 0;
  const auto found_in_new_output = [&] {
    // Search only what is new, plus enough of the old tail for a needle split across reads.
    const std::size_t old_size = seen.size();
    read_from(output_fd_, offset, seen);
    const std::size_t from = old_size >= needle.size() ? old_size - needle.size() + 1 : 0;
    return seen.size() > old_size && seen.find(needle, from) != std::string::npos;
  };

  for (;;) {
    if (found_in_new_output()) return true;
    // After it exited, it writes nothing more: one last read decides.
    if (try_reap()) return found_in_new_output();

    int wait_ms = remaining_ms(deadline);
    if (wait_ms == 0) return false;
    std::array<pollfd, 2> fds{};
    nfds_t count = 0;
    if (watching) fds[count++] = pollfd{inotify.get(), POLLIN, 0};
    if (pidfd_ >= 0) fds[count++] = pollfd{pidfd_, POLLIN, 0};
    if (!watching || pidfd_ < 0)
      wait_ms = std::min(wait_ms, static_cast<int>(kFallbackPollInterval.count()));
    if (::poll(fds.data(), count, wait_ms) < 0 && errno != EINTR) throw_errno("poll", errno);
    if (watching) {
      // Drain the queued events; what they say does not matter, only that the file grew.
      alignas(inotify_event) std::array<char, 4096> events{};
      while (::read(inotify.get(), events.data(), events.size()) > 0) {
      }
    }
  }
}

std::string DaemonProcess::command_line() const {
  {
    const std::lock_guard lock(mutex_);
    if (exit_code_) return {};
  }
  const std::string path = "/proc/" + std::to_string(pid_) + "/cmdline";
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return {};
  std::string text;
  off_t offset = 0;
  read_from(fd.get(), offset, text);
  while (!text.empty() && text.back() == '\0') text.pop_back();
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

int free_tcp_port() {
  const UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw_errno("socket", errno);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* generic = reinterpret_cast<sockaddr*>(&address);
  if (::bind(fd.get(), generic, sizeof address) != 0) throw_errno("bind 127.0.0.1:0", errno);
  socklen_t length = sizeof address;
  if (::getsockname(fd.get(), generic, &length) != 0) throw_errno("getsockname", errno);
  return ntohs(address.sin_port);
}

}  // namespace pgwd::testing
