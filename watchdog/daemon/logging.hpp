#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "daemon/config.hpp"

namespace spdlog::details {
class thread_pool;
}

namespace pgwd::daemon {

/// The daemon's logger on stderr: `text` for people, `json` for log shippers (one object per line,
/// the message escaped: spdlog's `%v` is not). Passwords never reach it: the library only logs
/// redacted conninfo and scrubbed server messages.
std::shared_ptr<spdlog::logger> make_logger(LogFormat format, LogLevel level);
/// Applies a reloaded log level and format to a logger made by make_logger.
void configure_logger(spdlog::logger& logger, LogFormat format, LogLevel level);

/// Lines the daemon's log holds before it drops: about 2-3 MiB of memory when full.
constexpr std::size_t kLogQueueLines = 8192;

/// The daemon's log, asynchronous: the loop only puts a line in a bounded queue (spdlog's
/// async_logger, overflow policy overrun_oldest) and one thread of its own writes the queue to
/// stderr. A stderr that nobody reads (a stuck log shipper) then fills the queue and the oldest
/// lines are dropped and counted; the loop, and so detection, never waits on stderr.
class DaemonLog {
 public:
  DaemonLog(LogFormat format, LogLevel level);
  /// Writes what is queued, waiting on stderr as long as it takes (the path of a start-up that
  /// failed, whose error message goes to stderr next anyway); a clean stop calls drain() instead.
  ~DaemonLog();
  DaemonLog(const DaemonLog&) = delete;
  DaemonLog& operator=(const DaemonLog&) = delete;

  /// The logger the daemon and its Watchdog write to. Thread-safe.
  std::shared_ptr<spdlog::logger> logger() const { return logger_; }
  /// As configure_logger. The formatter is replaced only when the format changes: replacing it
  /// takes the sink's lock, which a write to a blocked stderr holds.
  void configure(LogFormat format, LogLevel level);
  /// Lines dropped so far because the queue was full. Thread-safe.
  std::uint64_t dropped() const;
  /// Waits up to `timeout` until every queued line is written to stderr (or dropped), then the
  /// log takes no more lines. Returns whether it finished: false when stderr stayed blocked, and
  /// then the writing thread is left blocked (the process is about to exit).
  bool drain(std::chrono::milliseconds timeout);

 private:
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> logger_;
  LogFormat format_;
};

}  // namespace pgwd::daemon
