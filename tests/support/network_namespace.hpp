#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgwd::testing {

/// A private network namespace with a veth pair to it: the test's "remote host". RAII: the
/// destructor removes the namespace (and with it the veth pair and any nft rules). Not copyable.
///
/// Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking, never a real host): one /30 per
/// namespace, chosen from the process id and a counter and skipping any /30 the host already
/// uses, so that test processes running in parallel do not collide. Needs root (CAP_NET_ADMIN
/// and CAP_SYS_ADMIN), `ip` (iproute2) and `nft`; see unavailable_reason().
///
/// Stop whatever runs inside (a TestCluster) before destroying this: a namespace deleted while
/// processes still live in it only disappears when they exit.
class NetworkNamespace {
 public:
  /// Throws std::runtime_error with the command's output if setup fails, leaving nothing behind.
  NetworkNamespace();
  /// Never throws.
  ~NetworkNamespace();
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;
  NetworkNamespace(NetworkNamespace&&) = delete;
  NetworkNamespace& operator=(NetworkNamespace&&) = delete;

  /// e.g. "pgwd-<pid>-<n>"
  const std::string& name() const;
  /// Our side of the veth pair.
  const std::string& host_address() const;
  /// The namespace's side: what PostgreSQL listens on.
  const std::string& server_address() const;
  /// {"ip", "netns", "exec", name()}: prefix for commands that must run inside
  /// (ClusterSettings::command_prefix).
  std::vector<std::string> exec_prefix() const;
  /// Drops every packet into and out of the namespace (nft in the namespace): no FIN, no RST,
  /// nothing, ARP included. Sockets on either side see silence, not an error.
  void black_hole();
  /// Removes the drop rules.
  void restore();
  /// nullopt when namespaces can be created here (probe once: create+delete a namespace), else
  /// why not (e.g. "not root", "ip netns add failed: Operation not permitted").
  static std::optional<std::string> unavailable_reason();

 private:
  void set_up();
  void pick_addresses(unsigned pid, unsigned counter);
  void teardown() noexcept;

  std::string name_;
  std::string host_veth_;  // in our namespace
  std::string peer_veth_;  // in name_
  std::string host_address_;
  std::string server_address_;
  bool namespace_added_ = false;
  bool veth_added_ = false;
};

/// The first base of a fixture that needs a namespace: checked and made before anything else of
/// the fixture (so a cluster started inside it later is stopped before it goes). Never a silent
/// skip: where namespaces cannot be made, it says why and exits 77, which ctest reports as
/// Skipped.
struct RequireNetworkNamespaces {
  RequireNetworkNamespaces();
};
struct NetworkNamespaceFirst : RequireNetworkNamespaces {
  NetworkNamespace ns;
};

}  // namespace pgwd::testing
