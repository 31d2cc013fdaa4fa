#pragma once

#include <unistd.h>

namespace pgwd::daemon {

/// Owns a file descriptor (a config file being read, a socket bound for a moment); closes it on
/// destruction. -1 owns nothing.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace pgwd::daemon
