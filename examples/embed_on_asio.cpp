// Embedding pgwatchdog on a host's own asio io_context: the smallest complete program.
// Build: part of the CMake build (examples/) when asio's headers are installed (libasio-dev).
// Run: ./embed_on_asio 'host=... dbname=...'   Ctrl-C or SIGTERM stops it. The README shows it.
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <pgwd/adapters/asio.hpp>
#include <pgwd/watchdog.hpp>
#include <string>

namespace {

// Print the events a service would act on (page someone, drain a pool, fail over...).
class PrintingObserver final : public pgwd::Observer {
 public:
  void on_healthy(const pgwd::HealthyEvent& e) override {
    std::printf("%s[%d] healthy, backend pid %d\n", e.connection.target.c_str(), e.connection.index,
                e.server.backend_pid);
  }
  void on_down(const pgwd::DownEvent& e) override {
    std::printf("%s[%d] down: %s %s\n", e.connection.target.c_str(), e.connection.index,
                std::string(pgwd::to_string(e.cause)).c_str(), e.message.c_str());
  }
  void on_notification(const pgwd::NotificationEvent& e) override {
    std::printf("NOTIFY %s: %s\n", e.channel.c_str(), e.payload.c_str());
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONNINFO\n", argv[0]);
    return 2;
  }
  asio::io_context io(1);   // the host's loop, run by this thread only
  pgwd::AsioLoop loop(io);  // must outlive the Watchdog
  PrintingObserver observer;
  pgwd::WatchdogOptions options;
  options.observer = &observer;  // metrics go to a store of its own: watchdog->metrics()
  auto watchdog = std::make_unique<pgwd::Watchdog>(loop, options);

  pgwd::TargetOptions target;
  target.name = "main";
  target.conninfo = argv[1];
  target.connections = 2;
  target.listen_channels = {"jobs"};
  try {
    watchdog->add_target(target);  // returns at once; connecting happens on the loop
  } catch (const pgwd::InvalidTarget& e) {
    std::fprintf(stderr, "%s\n", e.what());  // names the target and the problem, never the password
    return 2;
  }
  // The host decides when its loop ends; the watchdog never stops it. Destroying the Watchdog
  // (on the loop's thread) closes its connections and cancels all it has on the io_context, so
  // run() returns by itself once the host's own work is done too.
  asio::signal_set stop(io, SIGINT, SIGTERM);
  stop.async_wait([&](const asio::error_code& ec, int) {
    if (!ec) watchdog.reset();
  });
  io.run();
  return 0;
}
