#pragma once

/// \file
/// The two baselines pgwatchdog is compared with, on plain libpq:
///  - the floor: a raw connection's socket in an epoll set, on a thread that does nothing but
///    epoll_wait (the fastest a process can learn that the kernel has news on the socket);
///  - the admin connection that terminates backends and counts, blocking, off the loop.

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgwd::bench {

using Clock = std::chrono::steady_clock;

struct PgConnCloser {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;

/// Blocking PQconnectdb; throws std::runtime_error with libpq's message (never the conninfo).
PgConn connect_blocking(const std::string& conninfo);
/// Blocking PQexec of a statement that returns at most one value; throws on error.
std::string exec_value(PGconn* conn, const std::string& sql);

/// `count` raw connections watched by epoll on a thread of their own. Each detection is kept
/// (the instant epoll_wait returned for that socket) until reconnect(i).
class FloorWatcher {
 public:
  FloorWatcher(std::string conninfo, int count);
  ~FloorWatcher();
  FloorWatcher(const FloorWatcher&) = delete;
  FloorWatcher& operator=(const FloorWatcher&) = delete;

  int size() const noexcept { return static_cast<int>(connections_.size()); }
  int backend_pid(int index);
  /// Waits until connection `index` was reported readable; its detection instant.
  bool wait_detected(int index, std::chrono::milliseconds timeout, Clock::time_point& when);
  /// Waits until every connection was reported; their instants (index order).
  bool wait_all_detected(std::chrono::milliseconds timeout, std::vector<Clock::time_point>& when);
  /// Closes connection `index` and opens it afresh (blocking), watched again.
  void reconnect(int index);
  void reconnect_all();

 private:
  void watch(int index);
  void run();

  std::string conninfo_;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that ends the thread
  std::mutex mutex_;
  std::condition_variable detected_changed_;
  std::vector<PgConn> connections_;
  std::vector<int> sockets_;
  std::vector<bool> detected_;
  std::vector<Clock::time_point> detected_at_;
  std::thread thread_;
};

}  // namespace pgwd::bench
