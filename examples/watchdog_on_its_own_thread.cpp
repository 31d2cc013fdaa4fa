// pgwatchdog for a host without an event loop: a WatchdogThread runs it on a thread of its own,
// and any thread may call it. Run: ./watchdog_on_its_own_thread 'host=... dbname=...'
// Ctrl-C (or SIGTERM) stops it. The README shows this file.
#include <csignal>
#include <cstdio>
#include <pgwd/watchdog_thread.hpp>
#include <string>

namespace {

// Runs on the watchdog's thread: keep it short, and lock nothing that a caller of the
// WatchdogThread holds while it waits for that thread.
class PrintingObserver final : public pgwd::Observer {
 public:
  void on_healthy(const pgwd::HealthyEvent& e) override {
    std::printf("%s[%d] healthy, backend pid %d\n", e.connection.target.c_str(), e.connection.index,
                e.server.backend_pid);
    std::fflush(stdout);
  }
  void on_down(const pgwd::DownEvent& e) override {
    std::printf("%s[%d] down: %s %s\n", e.connection.target.c_str(), e.connection.index,
                std::string(pgwd::to_string(e.cause)).c_str(), e.message.c_str());
    std::fflush(stdout);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONNINFO\n", argv[0]);
    return 2;
  }
  // Block the stop signals before any thread starts, so that only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  PrintingObserver observer;
  pgwd::WatchdogOptions options;
  options.observer = &observer;
  pgwd::WatchdogThread watchdog(options);  // returns once its loop runs

  pgwd::TargetOptions target;
  target.name = "main";
  target.conninfo = argv[1];
  target.connections = 2;
  try {
    watchdog.add_target(target);  // from this thread; errors arrive here
  } catch (const pgwd::InvalidTarget& e) {
    std::fprintf(stderr, "%s\n", e.what());  // names the target and the problem, never the password
    return 2;
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  // ~WatchdogThread: closes the connections on its thread, joins it, frees its loop.
  return 0;
}
