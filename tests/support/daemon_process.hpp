#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgwd::testing {

/// A program (normally the pgwatchdog daemon) running as a child process of an end-to-end test.
///
/// The child gets stdin from /dev/null, stdout and stderr appended to a fresh temporary file
/// (under $TMPDIR, else /tmp), no file descriptors of ours other than 0-2, an empty signal mask
/// and default signal dispositions. It stays in our process group.
///
/// Waiting is event-driven: a pidfd (Linux >= 5.3) tells when the child exits and inotify when it
/// writes output; only without pidfd_open does wait_exit fall back to polling waitpid. Nothing
/// here installs signal handlers or touches SIGCHLD, so a libevent loop may run on another thread
/// meanwhile. The child is reaped only with waitpid(pid), never waitpid(-1).
///
/// Thread safety: the methods may be called from several threads at once (a helper thread waiting
/// while the loop thread reads output()); the child is never signalled after it was reaped, so a
/// recycled pid is never hit.
class DaemonProcess {
 public:
  /// Starts `binary` (looked up in PATH when it has no slash) with `args` as argv[1..], with
  /// `env` added to (or replacing entries of) the inherited environment. Throws
  /// std::runtime_error if it cannot be started (no such file, not executable, ...).
  DaemonProcess(std::string binary, std::vector<std::string> args,
                std::map<std::string, std::string> env = {});
  /// If still running: SIGKILL and reap. Removes the output file. Never throws.
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  DaemonProcess(DaemonProcess&&) = delete;
  DaemonProcess& operator=(DaemonProcess&&) = delete;

  int pid() const noexcept { return pid_; }
  /// Sends `signal` unless the process has already been reaped (then it does nothing). Throws
  /// std::runtime_error if kill fails.
  void send_signal(int signal);
  /// Waits up to `timeout` for the process to exit; returns its exit code (128+N if killed by
  /// signal N), or nullopt on timeout. Returns the same code again on later calls.
  /// `before_reap`, if given, is called once the process has exited and before it is reaped,
  /// while /proc still has its main thread's statistics (thread_schedstat(pid, pid)); not if
  /// it was reaped already.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout,
                               const std::function<void()>& before_reap = {});
  /// Whether it has not exited yet (reaps it if it has).
  bool running();

  /// Everything the process wrote so far (stdout and stderr, interleaved as written).
  std::string output() const;
  /// Waits until output() contains `needle`, the process exits, or `timeout` passes; returns
  /// whether the needle was found (output written just before exit still counts).
  bool wait_for_output(std::string_view needle, std::chrono::milliseconds timeout);

  /// The command line as `ps` shows it: /proc/<pid>/cmdline with NULs turned into spaces (no
  /// trailing space). "" once the process has been reaped or if it cannot be read.
  std::string command_line() const;

 private:
  /// waitpid(pid_, WNOHANG) unless already reaped; records the exit code. Caller holds mutex_.
  bool try_reap_locked(const std::function<void()>& before_reap = {});
  bool try_reap();
  /// Blocking wait via the pidfd-less fallback path.
  std::optional<int> wait_exit_polling(std::chrono::steady_clock::time_point deadline,
                                       const std::function<void()>& before_reap);

  std::string binary_;
  std::string output_path_;
  int output_fd_ = -1;  // O_RDONLY on output_path_, for output() and wait_for_output()
  int pidfd_ = -1;      // -1 if pidfd_open is unavailable
  pid_t pid_ = -1;

  mutable std::mutex mutex_;  // guards exit_code_ and the reaping of pid_
  std::optional<int> exit_code_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close). Another
/// process may take it before the caller binds it; tests should retry on "address in use".
int free_tcp_port();

}  // namespace pgwd::testing
