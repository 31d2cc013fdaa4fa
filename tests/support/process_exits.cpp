#include "support/process_exits.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <string>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // the same number on every architecture
#endif

namespace pgwd::testing {

namespace {

// Without a pidfd: gone, or a zombie its parent has not reaped yet.
bool exited_by_proc(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return true;
  return text[paren + 2] == 'Z' || text[paren + 2] == 'X';
}

}  // namespace

ProcessExits::ProcessExits(std::vector<int> pids, bool realtime)
    : pids_(std::move(pids)), realtime_(realtime), exited_at_(pids_.size()), left_(pids_.size()) {
  for (std::size_t i = 0; i < pids_.size(); ++i) {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pids_[i], 0));
    if (fd < 0 && errno == ESRCH) {  // gone already: it exited before any of this
      exited_at_[i] = Clock::now();
      --left_;
    } else if (fd < 0) {
      pidfds_ = false;
    }
    fds_.push_back(fd);
  }
  thread_ = std::thread([this] { run(); });
}

ProcessExits::~ProcessExits() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  thread_.join();
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

void ProcessExits::run() {
  if (realtime_) {
    const sched_param priority{.sched_priority = 1};
    (void)pthread_setschedparam(pthread_self(), SCHED_FIFO, &priority);  // as usual if refused
  }
  for (;;) {
    std::vector<pollfd> polled;
    std::vector<std::size_t> which;
    std::vector<std::size_t> by_proc;
    {
      std::lock_guard lock(mutex_);
      if (stop_ || left_ == 0) return;
      for (std::size_t i = 0; i < fds_.size(); ++i) {
        if (exited_at_[i]) continue;
        if (fds_[i] >= 0) {
          polled.push_back({fds_[i], POLLIN, 0});
          which.push_back(i);
        } else {
          by_proc.push_back(i);
        }
      }
    }
    // An exit wakes the poll at once; the timeout is for stop_ and the /proc fallback.
    const int ready = ::poll(polled.data(), polled.size(), by_proc.empty() ? 50 : 1);
    std::vector<std::size_t> gone;
    if (ready > 0)
      for (std::size_t k = 0; k < polled.size(); ++k)
        if (polled[k].revents != 0) gone.push_back(which[k]);
    for (std::size_t i : by_proc)
      if (exited_by_proc(pids_[i])) gone.push_back(i);
    if (gone.empty()) continue;
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    for (std::size_t i : gone) {
      exited_at_[i] = now;
      --left_;
    }
    changed_.notify_all();
  }
}

bool ProcessExits::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return left_ == 0; });
}

std::optional<ProcessExits::Clock::time_point> ProcessExits::exited_at(int pid) const {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < pids_.size(); ++i)
    if (pids_[i] == pid) return exited_at_[i];
  return std::nullopt;
}

}  // namespace pgwd::testing
