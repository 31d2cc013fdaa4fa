// Embedding pgwatchdog on a host's own libevent loop: the smallest complete program.
// Build: part of the CMake build (examples/). Run: ./embed_on_host_loop 'host=... dbname=...'
// Ctrl-C stops it. The README shows this file.
#include <event2/event.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <pgwd/watchdog.hpp>

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

struct BaseDeleter {
  void operator()(event_base* b) const noexcept { event_base_free(b); }
};
struct EventDeleter {
  void operator()(event* e) const noexcept { event_free(e); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONNINFO\n", argv[0]);
    return 2;
  }
  std::unique_ptr<event_base, BaseDeleter> base(event_base_new());  // the host's loop
  PrintingObserver observer;
  pgwd::WatchdogOptions options;
  options.observer = &observer;  // metrics go to a store of its own: watchdog.metrics()
  pgwd::Watchdog watchdog(base.get(), options);

  pgwd::TargetOptions target;
  target.name = "main";
  target.conninfo = argv[1];
  target.connections = 2;
  target.listen_channels = {"jobs"};
  try {
    watchdog.add_target(target);  // returns at once; connecting happens on the loop
  } catch (const pgwd::InvalidTarget& e) {
    std::fprintf(stderr, "%s\n", e.what());  // names the target and the problem, never the password
    return 2;
  }
  // The host decides when its loop ends; the watchdog never exits it.
  std::unique_ptr<event, EventDeleter> stop(evsignal_new(
      base.get(), SIGINT,
      [](evutil_socket_t, short, void* b) { event_base_loopbreak(static_cast<event_base*>(b)); },
      base.get()));
  event_add(stop.get(), nullptr);
  event_base_dispatch(base.get());
  // What a scrape would read, in the Prometheus text format; a host with a prometheus-cpp
  // Exposer registers pgwd::prometheus_collectable(watchdog.metrics()) with it instead.
  std::fputs(watchdog.metrics()->text().c_str(), stdout);
  return 0;
}
