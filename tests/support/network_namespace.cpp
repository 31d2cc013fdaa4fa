#include "support/network_namespace.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

// 198.18.0.0/15 (RFC 2544): reserved for benchmarking, so never a real host on any network.
constexpr std::uint32_t kRangeBase = (198U << 24) | (18U << 16);
constexpr std::uint32_t kRangeBlocks = (1U << 17) / 4;  // /30 blocks in a /15
// Only this many candidate blocks are looked at; they are consecutive, so a handful is plenty.
constexpr unsigned kBlockTries = 64;
// A namespace or veth name left over by a crashed process with our pid is skipped, not reused.
constexpr unsigned kNameTries = 8;
// Our tables; a flush of the namespace's (private) ruleset removes them.
constexpr std::string_view kTable = "pgwd_black_hole";

std::atomic<unsigned> g_counter{0};

std::string dotted(std::uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xffU) + "." +
         std::to_string((address >> 8) & 0xffU) + "." + std::to_string(address & 0xffU);
}

std::string hex(unsigned value) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%x", value);
  return buffer;
}

bool contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

// True when the error says a name is taken: try the next one rather than give up.
bool name_taken(const std::runtime_error& error) {
  return contains(error.what(), "File exists");
}

}  // namespace

NetworkNamespace::NetworkNamespace() {
  const auto pid = static_cast<unsigned>(::getpid());
  for (unsigned attempt = 1;; ++attempt) {
    const unsigned n = g_counter.fetch_add(1);
    name_ = "pgwd-" + std::to_string(pid) + "-" + std::to_string(n);
    // IFNAMSIZ: at most 15 characters. A pid is at most 0x400000 (6 hex digits); "pw" + 6 + 1
    // leaves 6 hex digits for the counter.
    const std::string stem = "pw" + hex(pid);
    host_veth_ = stem + "h" + hex(n & 0xffffffU);
    peer_veth_ = stem + "n" + hex(n & 0xffffffU);
    try {
      pick_addresses(pid, n);
      set_up();
      return;
    } catch (const std::runtime_error& error) {
      teardown();
      if (!name_taken(error) || attempt == kNameTries) throw;
    }
  }
}

NetworkNamespace::~NetworkNamespace() {
  teardown();
}

void NetworkNamespace::pick_addresses(unsigned pid, unsigned counter) {
  // Addresses and routes of the host's namespace: another test process's veth shows here.
  const std::string in_use = run_checked({"ip", "-o", "-4", "addr", "show"}) +
                             run_checked({"ip", "-4", "route", "show", "table", "all"});
  const std::uint32_t first = (pid + counter * 4099U) % kRangeBlocks;
  for (unsigned i = 0; i < kBlockTries; ++i) {
    const std::uint32_t network = kRangeBase + ((first + i) % kRangeBlocks) * 4U;
    const std::string host = dotted(network + 1);
    const std::string server = dotted(network + 2);
    if (contains(in_use, dotted(network) + "/30") || contains(in_use, " " + host + "/") ||
        contains(in_use, " " + server + "/") || contains(in_use, " " + server + " ") ||
        contains(in_use, " " + host + " "))
      continue;
    host_address_ = host;
    server_address_ = server;
    return;
  }
  throw std::runtime_error("no free /30 in 198.18.0.0/15 near block " + std::to_string(first));
}

void NetworkNamespace::set_up() {
  run_checked({"ip", "netns", "add", name_});
  namespace_added_ = true;
  run_checked({"ip", "link", "add", host_veth_, "type", "veth", "peer", "name", peer_veth_, "netns",
               name_});
  veth_added_ = true;
  run_checked({"ip", "addr", "add", host_address_ + "/30", "dev", host_veth_});
  run_checked({"ip", "link", "set", host_veth_, "up"});
  run_checked({"ip", "-n", name_, "addr", "add", server_address_ + "/30", "dev", peer_veth_});
  run_checked({"ip", "-n", name_, "link", "set", peer_veth_, "up"});
  run_checked({"ip", "-n", name_, "link", "set", "lo", "up"});
}

void NetworkNamespace::teardown() noexcept {
  try {
    // Deleting one end deletes both. Done explicitly: the namespace itself (and the peer end in
    // it) only goes away once no process lives in it any more.
    if (veth_added_) (void)run_process({"ip", "link", "del", host_veth_});
    if (namespace_added_) (void)run_process({"ip", "netns", "del", name_});
  } catch (...) {
    // Best effort; nothing else to do in a destructor.
  }
  veth_added_ = false;
  namespace_added_ = false;
}

const std::string& NetworkNamespace::name() const {
  return name_;
}

const std::string& NetworkNamespace::host_address() const {
  return host_address_;
}

const std::string& NetworkNamespace::server_address() const {
  return server_address_;
}

std::vector<std::string> NetworkNamespace::exec_prefix() const {
  return {"ip", "netns", "exec", name_};
}

void NetworkNamespace::black_hole() {
  // One nft transaction: all rules apply at once. Priority raw (-300) runs before anything else
  // could look at the packet. The ARP table keeps the neighbour from answering either: nothing
  // at all crosses the link.
  const std::string table(kTable);
  const std::string dev = "\"" + peer_veth_ + "\"";
  std::string ruleset;
  ruleset += "add table inet " + table + " ; ";
  ruleset += "add chain inet " + table +
             " in { type filter hook prerouting priority -300 ; policy accept ; } ; ";
  ruleset += "add rule inet " + table + " in iifname " + dev + " drop ; ";
  ruleset += "add chain inet " + table +
             " out { type filter hook output priority -300 ; policy accept ; } ; ";
  ruleset += "add rule inet " + table + " out oifname " + dev + " drop ; ";
  ruleset += "add table arp " + table + " ; ";
  ruleset +=
      "add chain arp " + table + " in { type filter hook input priority 0 ; policy drop ; } ; ";
  ruleset +=
      "add chain arp " + table + " out { type filter hook output priority 0 ; policy drop ; }";
  std::vector<std::string> command = exec_prefix();
  command.insert(command.end(), {"nft", ruleset});
  run_checked(command);
}

void NetworkNamespace::restore() {
  // The namespace's ruleset is ours alone; flushing it is idempotent.
  std::vector<std::string> command = exec_prefix();
  command.insert(command.end(), {"nft", "flush", "ruleset"});
  run_checked(command);
}

std::optional<std::string> NetworkNamespace::unavailable_reason() {
  static const std::optional<std::string> reason = []() -> std::optional<std::string> {
    if (::geteuid() != 0) return "not root (euid " + std::to_string(::geteuid()) + ")";
    try {
      // Everything a test does: namespace, veth pair, addresses, and nft inside.
      NetworkNamespace probe;
      std::vector<std::string> command = probe.exec_prefix();
      command.insert(command.end(), {"nft", "list", "ruleset"});
      run_checked(command);
    } catch (const std::exception& error) {
      return std::string(error.what());
    }
    return std::nullopt;
  }();
  return reason;
}

RequireNetworkNamespaces::RequireNetworkNamespaces() {
  if (const auto why = NetworkNamespace::unavailable_reason()) {
    std::cout << "SKIPPED: network namespaces unavailable here: " << *why << std::endl;
    std::exit(77);
  }
}

}  // namespace pgwd::testing
