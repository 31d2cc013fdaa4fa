#include "support/dns_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "support/daemon_process.hpp"
#include "support/server_tools.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kReadyTimeout{10};
constexpr std::chrono::seconds kChangeTimeout{10};
// A name dnsmasq answers from the start, to tell when it is serving.
constexpr std::string_view kCanaryName = "canary.pgwd.test";
constexpr std::string_view kCanaryAddress = "127.0.0.254";

int free_udp_port() {
  const UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(errno_message("socket", errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* generic = reinterpret_cast<sockaddr*>(&address);
  if (::bind(fd.get(), generic, sizeof address) != 0)
    throw std::runtime_error(errno_message("bind udp 127.0.0.1:0", errno));
  socklen_t length = sizeof address;
  if (::getsockname(fd.get(), generic, &length) != 0)
    throw std::runtime_error(errno_message("getsockname", errno));
  return ntohs(address.sin_port);
}

std::string make_temp_dir() {
  fs::path parent = "/tmp";
  if (const char* root = std::getenv("PGWD_TEST_ROOT"); root != nullptr && *root != '\0') {
    parent = root;
    std::error_code ec;
    fs::create_directories(parent, ec);
  }
  std::string pattern = (parent / "pgwd-dns-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error(errno_message("mkdtemp " + pattern, errno));
  // dnsmasq may drop to another user (nobody) and must still read the hosts file on SIGHUP.
  fs::permissions(pattern, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
  return pattern;
}

std::string user_name() {
  // dnsmasq changes to --user (default nobody) only when started as root; as root, stay root so
  // that nothing about the hosts file's permissions can get in the way.
  return ::geteuid() == 0 ? "root" : "";
}

// --- a minimal DNS client: one question, A records out of the answer section ---

void put16(std::vector<std::uint8_t>& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

std::vector<std::uint8_t> build_query(std::uint16_t id, std::string_view name) {
  std::vector<std::uint8_t> out;
  put16(out, id);
  put16(out, 0x0100);  // standard query, recursion desired
  put16(out, 1);       // QDCOUNT
  put16(out, 0);       // ANCOUNT
  put16(out, 0);       // NSCOUNT
  put16(out, 0);       // ARCOUNT
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const std::size_t length = dot - start;
    if (length == 0 || length > 63)
      throw std::invalid_argument("bad DNS name: " + std::string(name));
    out.push_back(static_cast<std::uint8_t>(length));
    out.insert(out.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
               name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  out.push_back(0);
  put16(out, 1);  // QTYPE A
  put16(out, 1);  // QCLASS IN
  return out;
}

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint16_t u16() {
    need(2);
    const std::uint16_t value = static_cast<std::uint16_t>((data_[at_] << 8) | data_[at_ + 1]);
    at_ += 2;
    return value;
  }
  std::uint32_t u32() {
    const std::uint32_t high = u16();
    return (high << 16) | u16();
  }
  void skip(std::size_t n) {
    need(n);
    at_ += n;
  }
  void skip_name() {
    for (;;) {
      need(1);
      const std::uint8_t length = data_[at_];
      if ((length & 0xc0) == 0xc0) {  // compression pointer: ends the name
        skip(2);
        return;
      }
      skip(1);
      if (length == 0) return;
      skip(length);
    }
  }
  const std::uint8_t* here() const { return data_ + at_; }

 private:
  void need(std::size_t n) const {
    if (at_ + n > size_) throw std::runtime_error("truncated DNS reply");
  }
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

}  // namespace

DnsAnswer query_a(const std::string& server, int port, std::string_view name,
                  std::chrono::milliseconds timeout) {
  const UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(errno_message("socket", errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, server.c_str(), &address.sin_addr) != 1)
    throw std::invalid_argument("not an IPv4 address: " + server);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error(errno_message("connect udp " + server, errno));

  static thread_local std::mt19937 random{std::random_device{}()};
  const auto id = static_cast<std::uint16_t>(random());
  const std::vector<std::uint8_t> request = build_query(id, name);
  if (::send(fd.get(), request.data(), request.size(), 0) != static_cast<ssize_t>(request.size()))
    throw std::runtime_error(errno_message("send DNS query", errno));

  const Clock::time_point deadline = Clock::now() + timeout;
  std::array<std::uint8_t, 1500> reply{};
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return {};
    pollfd p{fd.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(errno_message("poll", errno));
    }
    if (ready == 0) return {};
    const ssize_t n = ::recv(fd.get(), reply.data(), reply.size(), 0);
    if (n < 0) {
      // ECONNREFUSED: nothing listens on the port (yet); count it as no reply.
      if (errno == EINTR || errno == ECONNREFUSED) {
        if (errno == ECONNREFUSED) return {};
        continue;
      }
      throw std::runtime_error(errno_message("recv DNS reply", errno));
    }
    Reader in(reply.data(), static_cast<std::size_t>(n));
    if (in.u16() != id) continue;  // a late reply to another query
    const std::uint16_t flags = in.u16();
    const std::uint16_t questions = in.u16();
    const std::uint16_t answers = in.u16();
    in.u16();  // NSCOUNT
    in.u16();  // ARCOUNT
    DnsAnswer answer;
    answer.rcode = flags & 0x0f;
    for (int i = 0; i < questions; ++i) {
      in.skip_name();
      in.skip(4);
    }
    for (int i = 0; i < answers; ++i) {
      in.skip_name();
      const std::uint16_t type = in.u16();
      const std::uint16_t klass = in.u16();
      in.u32();  // TTL
      const std::uint16_t length = in.u16();
      if (type == 1 && klass == 1 && length == 4) {
        std::array<char, INET_ADDRSTRLEN> text{};
        ::inet_ntop(AF_INET, in.here(), text.data(), text.size());
        answer.addresses.emplace_back(text.data());
      }
      in.skip(length);
    }
    return answer;
  }
}

std::string DnsServer::binary() {
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      if (dir.empty()) continue;
      const std::string candidate = dir + "/dnsmasq";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  for (const char* candidate : {"/usr/sbin/dnsmasq", "/sbin/dnsmasq"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

DnsServer::DnsServer() {
  const std::string dnsmasq = binary();
  if (dnsmasq.empty())
    throw std::runtime_error("dnsmasq is not installed (Debian package dnsmasq-base)");
  dir_ = make_temp_dir();
  hosts_path_ = dir_ + "/hosts";
  try {
    names_[std::string(kCanaryName)] = std::string(kCanaryAddress);
    write_hosts();
    std::string last_output;
    for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
      port_ = free_udp_port();
      std::vector<std::string> args = {
          "--keep-in-foreground",
          "--log-facility=-",  // log to stderr, i.e. our output file
          "--log-queries",
          "--conf-file=/dev/null",
          "--pid-file=" + dir_ + "/dnsmasq.pid",
          "--no-resolv",
          "--no-hosts",
          "--addn-hosts=" + hosts_path_,
          "--local=/pgwd.test/",
          "--local-ttl=0",
          "--no-negcache",
          "--bind-interfaces",
          "--listen-address=127.0.0.1",
          "--port=" + std::to_string(port_),
      };
      if (const std::string user = user_name(); !user.empty()) args.push_back("--user=" + user);
      process_ = std::make_unique<DaemonProcess>(dnsmasq, args);

      const Clock::time_point deadline = Clock::now() + kReadyTimeout;
      bool ready = false;
      while (Clock::now() < deadline && process_->running()) {
        const DnsAnswer answer =
            query_a(address(), port_, kCanaryName, std::chrono::milliseconds(100));
        if (answer.rcode && !answer.addresses.empty()) {
          ready = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (ready) return;
      last_output = process_->output();
      process_.reset();  // SIGKILL and reap
      // Someone took the port between our probe and dnsmasq's bind: try another one.
      if (last_output.find("Address already in use") == std::string::npos) break;
    }
    throw std::runtime_error("dnsmasq did not start serving on 127.0.0.1:" + std::to_string(port_) +
                             "\n--- dnsmasq output ---\n" + tail_lines(last_output));
  } catch (...) {
    process_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw;
  }
}

DnsServer::~DnsServer() {
  try {
    if (process_ && paused_) process_->send_signal(SIGCONT);
  } catch (...) {
    // SIGKILL below works on a stopped process too.
  }
  process_.reset();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::string DnsServer::nameserver() const {
  return address() + ":" + std::to_string(port_);
}

int DnsServer::pid() const {
  return process_->pid();
}

void DnsServer::write_hosts() const {
  // Written aside and renamed: dnsmasq never reads half a file.
  const std::string temporary = hosts_path_ + ".new";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    for (const auto& [name, ipv4] : names_) out << ipv4 << ' ' << name << '\n';
    out.flush();
    if (!out) throw std::runtime_error("could not write " + temporary);
  }
  fs::permissions(temporary, fs::perms::owner_read | fs::perms::owner_write |
                                 fs::perms::group_read | fs::perms::others_read);
  fs::rename(temporary, hosts_path_);
}

void DnsServer::set(const std::string& name, const std::string& ipv4) {
  names_[name] = ipv4;
  write_hosts();
  reload_and_wait(name, ipv4);
}

void DnsServer::remove(const std::string& name) {
  names_.erase(name);
  write_hosts();
  reload_and_wait(name, std::nullopt);
}

void DnsServer::reload_and_wait(const std::string& name,
                                const std::optional<std::string>& expected) {
  if (paused_) throw std::logic_error("DnsServer: change while paused");
  process_->send_signal(SIGHUP);
  const Clock::time_point deadline = Clock::now() + kChangeTimeout;
  for (;;) {
    const DnsAnswer answer = query(name, std::chrono::milliseconds(200));
    if (answer.rcode) {
      const bool served = expected ? (answer.addresses == std::vector<std::string>{*expected})
                                   : (*answer.rcode == 3 && answer.addresses.empty());
      if (served) return;
    }
    if (Clock::now() >= deadline)
      throw std::runtime_error("dnsmasq did not serve the change of " + name + " within " +
                               std::to_string(kChangeTimeout.count()) + " s\n" + tail_lines(log()));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void DnsServer::pause() {
  process_->send_signal(SIGSTOP);
  paused_ = true;
}

void DnsServer::resume() {
  process_->send_signal(SIGCONT);
  paused_ = false;
}

DnsAnswer DnsServer::query(std::string_view name, std::chrono::milliseconds timeout) const {
  return query_a(address(), port_, name, timeout);
}

std::string DnsServer::log() const {
  return process_ ? process_->output() : std::string();
}

}  // namespace pgwd::testing
