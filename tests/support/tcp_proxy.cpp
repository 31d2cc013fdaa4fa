#include "support/tcp_proxy.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "os/unique_fd.hpp"

namespace pgwd::testing {
namespace {

bool accepts_connections(int port) {
  const UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  if (fd.get() < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

}  // namespace

TcpProxy::TcpProxy(const std::string& server_host, int server_port) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "pgwd-test-haproxy.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  directory_ = pattern;
  port_ = free_tcp_port();
  const std::string config_path = directory_ + "/haproxy.cfg";
  {
    // Client and server timeouts far beyond any test: an idle watched connection must stay.
    std::ofstream out(config_path, std::ios::binary | std::ios::trunc);
    out << "global\n"
           "  maxconn 100\n"
           "defaults\n"
           "  mode tcp\n"
           "  timeout connect 5s\n"
           "  timeout client 1h\n"
           "  timeout server 1h\n"
           "listen postgres\n"
           "  bind 127.0.0.1:"
        << port_ << "\n  server only " << server_host << ":" << server_port << "\n";
    if (!out) throw std::runtime_error("could not write " + config_path);
  }
  // -db: foreground, no daemon, so DaemonProcess owns it.
  process_ = std::make_unique<DaemonProcess>("haproxy", std::vector<std::string>{"-db", "-f", config_path});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!accepts_connections(port_)) {
    if (!process_->running() || std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("haproxy did not start:\n" + process_->output());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // nothing else to wait on
  }
}

TcpProxy::~TcpProxy() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

}  // namespace pgwd::testing
