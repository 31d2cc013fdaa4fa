#pragma once

#include <unistd.h>

#include <utility>

namespace pgwd {

/// Owns a file descriptor (a config file being read, a socket bound for a moment, the duplicate
/// of a lent connection's socket); closes it on destruction. -1 owns nothing.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd& operator=(UniqueFd&&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace pgwd
