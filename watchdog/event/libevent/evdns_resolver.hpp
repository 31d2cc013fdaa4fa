#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pgwd/loop.hpp"

struct event_base;
struct evdns_base;

namespace pgwd {

/// Host name lookups with evdns on the host's event_base (libpq's own lookup would block it).
/// /etc/hosts is honoured, nothing is cached. The evdns base is made at construction, so that a
/// bad nameserver is refused there, and it is disabled while inactive: an idle resolver keeps no
/// event on the host's loop.
class EvdnsResolver final : public Resolver {
 public:
  /// `nameservers` ("IP", "IP:PORT", "[IPv6]:PORT") replace those of /etc/resolv.conf when not
  /// empty. Throws std::invalid_argument naming a bad entry.
  EvdnsResolver(event_base* base, const std::vector<std::string>& nameservers);
  ~EvdnsResolver() override;
  EvdnsResolver(const EvdnsResolver&) = delete;
  EvdnsResolver& operator=(const EvdnsResolver&) = delete;

  std::unique_ptr<Lookup> resolve(const std::string& host, Done done) override;

 private:
  struct DnsBaseDeleter {
    void operator()(evdns_base* dns) const noexcept;
  };

  event_base* base_;
  std::unique_ptr<evdns_base, DnsBaseDeleter> dns_;
};

}  // namespace pgwd
