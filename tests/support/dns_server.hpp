#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgwd::testing {

class DaemonProcess;

/// What one A query got back from a DNS server.
struct DnsAnswer {
  /// The reply's RCODE (0 NOERROR, 3 NXDOMAIN, ...); nullopt if no reply came in time.
  std::optional<int> rcode;
  /// IPv4 addresses of the A records in the answer section, in order.
  std::vector<std::string> addresses;
};

/// Sends one A query for `name` over UDP to `server`:`port` (blocking, at most `timeout`) and
/// parses the reply. Throws std::runtime_error on a local socket error or a malformed reply.
DnsAnswer query_a(const std::string& server, int port, std::string_view name,
                  std::chrono::milliseconds timeout);

/// A DNS server the test controls: dnsmasq in the foreground (`--keep-in-foreground`) on
/// 127.0.0.1 and a free port (UDP and TCP), answering only from a hosts file of its own
/// (`--no-resolv --no-hosts --addn-hosts=FILE`), authoritative for `pgwd.test`
/// (`--local=/pgwd.test/`: a name there that is not in the file gets NXDOMAIN; nothing is ever
/// forwarded). Replies carry TTL 0. Its log (every query: `--log-queries`) is in log().
///
/// set()/remove() rewrite the hosts file, SIGHUP dnsmasq (which clears its cache and re-reads
/// it) and wait until a query shows the change being served.
///
/// Not thread-safe; the destructor kills and reaps dnsmasq (resuming it first if paused) and
/// removes its directory, and never throws.
class DnsServer {
 public:
  /// Throws std::runtime_error if dnsmasq cannot be started (see available()).
  DnsServer();
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  /// Path of the dnsmasq binary (PATH, /usr/sbin, /sbin), or "" if it is not installed (Debian
  /// package dnsmasq-base).
  static std::string binary();

  std::string address() const { return "127.0.0.1"; }
  int port() const noexcept { return port_; }
  /// "127.0.0.1:PORT", as WatchdogOptions::nameservers takes it.
  std::string nameserver() const;
  int pid() const;

  /// `name` resolves to `ipv4` (replacing what it resolved to before). Waits until served.
  void set(const std::string& name, const std::string& ipv4);
  /// `name` no longer resolves (NXDOMAIN). Waits until served.
  void remove(const std::string& name);

  /// SIGSTOP: queries then get no answer at all until resume() (they queue in the socket).
  void pause();
  /// SIGCONT.
  void resume();

  /// One A query to this server.
  DnsAnswer query(std::string_view name,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) const;

  /// dnsmasq's output so far.
  std::string log() const;

 private:
  void write_hosts() const;
  void reload_and_wait(const std::string& name, const std::optional<std::string>& expected);

  std::string dir_;
  std::string hosts_path_;
  int port_ = 0;
  bool paused_ = false;
  std::map<std::string, std::string> names_;
  std::unique_ptr<DaemonProcess> process_;
};

}  // namespace pgwd::testing
