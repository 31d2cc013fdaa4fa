#include "pg/socket_error.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace pgwd {

int pending_socket_error(int fd) noexcept {
  if (fd < 0) return 0;
  char byte = 0;
  const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return 0;
  const int error = errno;
  return error == EAGAIN || error == EWOULDBLOCK || error == EINTR ? 0 : error;
}

}  // namespace pgwd
