#include "daemon/systemd_notify.hpp"

#include <spdlog/logger.h>
#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <new>
#include <system_error>
#include <utility>

#include "daemon/status_board.hpp"

namespace pgwd::daemon {
namespace {

EventPtr persistent_timer(event_base* base, event_callback_fn callback, void* self,
                          std::chrono::microseconds period) {
  EventPtr timer(event_new(base, -1, EV_PERSIST, callback, self));
  const timeval interval = to_timeval(period);
  if (!timer || event_add(timer.get(), &interval) != 0) throw std::bad_alloc();
  return timer;
}

std::uint64_t monotonic_usec() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
         static_cast<std::uint64_t>(now.tv_nsec) / 1'000U;
}

}  // namespace

SystemdNotifier::SystemdNotifier(event_base* base, const StatusBoard& board,
                                 std::shared_ptr<spdlog::logger> log)
    : board_(board), log_(std::move(log)) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  std::uint64_t usec = 0;
  const int watchdog = sd_watchdog_enabled(0, &usec);
  if (watchdog < 0) {
    log_->warn("systemd: ignoring WATCHDOG_USEC: {}", std::system_category().message(-watchdog));
  } else if (watchdog > 0 && usec > 0) {
    // Half the manager's timeout, as sd_watchdog_enabled(3) advises: one late ping is no restart.
    ping_interval_ = std::chrono::microseconds(static_cast<std::int64_t>(usec / 2U));
    ping_timer_ = persistent_timer(base, &SystemdNotifier::on_ping_timer, this, ping_interval_);
    log_->info("systemd: watchdog pings every {} ms from the watch loop",
               std::chrono::duration_cast<std::chrono::milliseconds>(ping_interval_).count());
  }
  status_timer_ = persistent_timer(base, &SystemdNotifier::on_status_timer, this,
                                   std::chrono::microseconds(kStatusPeriod));
}

SystemdNotifier::~SystemdNotifier() = default;

std::string SystemdNotifier::status_line() const {
  const StatusBoard::UpCount count = board_.up_count();
  return std::to_string(count.up) + "/" + std::to_string(count.total) + " targets up";
}

void SystemdNotifier::send(const std::string& message) {
  const int sent = sd_notify(0, message.c_str());
  if (sent >= 0 || std::exchange(send_failed_, true)) return;
  log_->warn("systemd: cannot notify the service manager: {}",
             std::system_category().message(-sent));
}

void SystemdNotifier::ready() {
  if (!enabled_) return;
  reloading_ = false;
  last_status_ = status_line();
  send("READY=1\nSTATUS=" + last_status_);
}

void SystemdNotifier::reloading() {
  if (!enabled_ || std::exchange(reloading_, true)) return;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
}

void SystemdNotifier::stopping() {
  if (!enabled_) return;
  send("STOPPING=1");
}

void SystemdNotifier::on_status_timer(evutil_socket_t, short, void* self) {
  auto* notifier = static_cast<SystemdNotifier*>(self);
  std::string status = notifier->status_line();
  if (status == notifier->last_status_) return;
  notifier->last_status_ = std::move(status);
  notifier->send("STATUS=" + notifier->last_status_);
}

void SystemdNotifier::on_ping_timer(evutil_socket_t, short, void* self) {
  static_cast<SystemdNotifier*>(self)->send("WATCHDOG=1");
}

}  // namespace pgwd::daemon
