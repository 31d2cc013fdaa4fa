#include "support/raw_connection.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <system_error>

namespace pgwd::bench {

PgConn connect_blocking(const std::string& conninfo) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error(std::string("connect failed: ") +
                             (conn ? PQerrorMessage(conn.get()) : "out of memory"));
  return conn;
}

std::string exec_value(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  std::string value;
  if (status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0)
    value = PQgetvalue(result, 0, 0);
  const bool ok = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
  const std::string error = ok ? "" : PQresultErrorMessage(result);
  PQclear(result);
  if (!ok) throw std::runtime_error(sql + ": " + error);
  return value;
}

FloorWatcher::FloorWatcher(std::string conninfo, int count) : conninfo_(std::move(conninfo)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll");
  epoll_event stop{};
  stop.events = EPOLLIN;
  stop.data.u64 = UINT64_MAX;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &stop);
  connections_.resize(static_cast<std::size_t>(count));
  sockets_.assign(static_cast<std::size_t>(count), -1);
  detected_.assign(static_cast<std::size_t>(count), false);
  detected_at_.resize(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    connections_[static_cast<std::size_t>(i)] = connect_blocking(conninfo_);
    watch(i);
  }
  thread_ = std::thread([this] { run(); });
}

FloorWatcher::~FloorWatcher() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(stop_fd_, &one, sizeof one);
  thread_.join();
  connections_.clear();
  ::close(stop_fd_);
  ::close(epoll_fd_);
}

void FloorWatcher::watch(int index) {
  const auto i = static_cast<std::size_t>(index);
  sockets_[i] = PQsocket(connections_[i].get());
  detected_[i] = false;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP;
  event.data.u64 = i;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sockets_[i], &event) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
}

void FloorWatcher::run() {
  pthread_setname_np(pthread_self(), "bench-floor");
  epoll_event events[64];
  for (;;) {
    const int ready = ::epoll_wait(epoll_fd_, events, 64, -1);
    const Clock::time_point now = Clock::now();
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    {
      const std::lock_guard lock(mutex_);
      for (int k = 0; k < ready; ++k) {
        const std::uint64_t index = events[k].data.u64;
        if (index == UINT64_MAX) return;
        if (index >= detected_.size() || detected_[index]) continue;
        detected_[index] = true;
        detected_at_[index] = now;
        // Level-triggered: stop the socket from firing again until it is replaced.
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, sockets_[index], nullptr);
      }
    }
    detected_changed_.notify_all();
  }
}

int FloorWatcher::backend_pid(int index) {
  const std::lock_guard lock(mutex_);
  return PQbackendPID(connections_[static_cast<std::size_t>(index)].get());
}

bool FloorWatcher::wait_detected(int index, std::chrono::milliseconds timeout,
                                 Clock::time_point& when) {
  std::unique_lock lock(mutex_);
  const auto i = static_cast<std::size_t>(index);
  if (!detected_changed_.wait_for(lock, timeout, [&] { return bool(detected_[i]); })) return false;
  when = detected_at_[i];
  return true;
}

bool FloorWatcher::wait_all_detected(std::chrono::milliseconds timeout,
                                     std::vector<Clock::time_point>& when) {
  std::unique_lock lock(mutex_);
  const bool all = detected_changed_.wait_for(lock, timeout, [&] {
    for (const bool d : detected_)
      if (!d) return false;
    return true;
  });
  if (all) when = detected_at_;
  return all;
}

void FloorWatcher::reconnect(int index) {
  const auto i = static_cast<std::size_t>(index);
  PgConn fresh = connect_blocking(conninfo_);
  const std::lock_guard lock(mutex_);
  if (!detected_[i]) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, sockets_[i], nullptr);
  connections_[i] = std::move(fresh);
  watch(index);
}

void FloorWatcher::reconnect_all() {
  for (int i = 0; i < size(); ++i) reconnect(i);
}

}  // namespace pgwd::bench
