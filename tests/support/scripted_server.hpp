#pragma once

/// A PostgreSQL server's side of a connection, scripted: a few bytes of the protocol written to
/// a connection accepted on a SilentListener, for tests that need a server's answer to be on a
/// socket at a moment they choose (the loop not told yet), with no server behind it.

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pgwd::testing {

inline void put_int32(std::string& out, std::uint32_t value) {
  const std::uint32_t network = htonl(value);
  out.append(reinterpret_cast<const char*>(&network), 4);
}

/// One backend message: its type, its length, its body.
inline std::string message(char type, std::string_view body) {
  std::string out(1, type);
  put_int32(out, static_cast<std::uint32_t>(body.size() + 4));
  out.append(body);
  return out;
}

/// What a trust-authenticated PostgreSQL 15 sends after the startup packet, up to its first
/// ReadyForQuery: AuthenticationOk, the role's ParameterStatus, BackendKeyData (pid 4242),
/// ReadyForQuery.
inline std::string server_welcome() {
  std::string auth_ok;
  put_int32(auth_ok, 0);
  std::string key;
  put_int32(key, 4242);
  put_int32(key, 1);
  using namespace std::string_literals;
  return message('R', auth_ok) +
         message('S',
                 "server_version\0"s
                 "15.0\0"s) +
         message('S',
                 "in_hot_standby\0"s
                 "off\0"s) +
         message('S',
                 "default_transaction_read_only\0"s
                 "off\0"s) +
         message('K', key) + message('Z', "I");
}

/// A NOTICE the server sends on an idle session (NoticeResponse), SQLSTATE 01000.
inline std::string notice(std::string_view text) {
  using namespace std::string_literals;
  return message('N', "SNOTICE\0VNOTICE\0C01000\0M"s + std::string(text) + "\0\0"s);
}

/// A server starting up refusing the session: FATAL 57P03, as its ErrorResponse.
inline std::string starting_up_refusal() {
  using namespace std::string_literals;
  return message('E', "SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"s);
}

/// The server's side of the next connection to `listener_fd`: waits up to 10 s for one (the
/// kernel completes the handshake when the client connects), then accepts it. The client's
/// startup packet is never read.
class Accepted {
 public:
  explicit Accepted(int listener_fd) {
    pollfd waiting{listener_fd, POLLIN, 0};
    if (::poll(&waiting, 1, 10000) != 1) throw std::runtime_error("Accepted: nobody connected");
    fd_ = ::accept(listener_fd, nullptr, nullptr);
    if (fd_ < 0) throw std::runtime_error("Accepted: accept failed");
  }
  ~Accepted() { ::close(fd_); }
  Accepted(const Accepted&) = delete;
  Accepted& operator=(const Accepted&) = delete;

  void send_all(const std::string& bytes) const {
    if (::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size()))
      throw std::runtime_error("Accepted: send failed");
  }

  /// What the client sent and the server has not read yet, without waiting: "" when nothing is
  /// waiting. `closed` (if given) says whether the client has closed its end.
  std::string receive_now(bool* closed = nullptr) const {
    std::string received;
    if (closed) *closed = false;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) {
        received.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 && closed) *closed = true;
      return received;  // EOF, or EAGAIN: nothing more now
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace pgwd::testing
