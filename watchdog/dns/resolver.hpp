#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "event/timer.hpp"

struct event_base;
struct evdns_base;

namespace pgwd {

struct Resolution {
  std::vector<std::string> addresses;  ///< numeric, in the resolver's order, no duplicates
  std::string error;                   ///< empty on success
};

/// Non-blocking host name lookups with evdns (libpq's own lookup blocks the loop).
/// /etc/hosts is honoured. Must outlive every Lookup it hands out.
class Resolver {
 public:
  using Done = std::function<void(Resolution)>;

  /// A lookup in flight. Its callback always runs from the loop, never inside resolve().
  class Lookup {
   public:
    virtual ~Lookup() = default;
    /// After cancel() the callback never runs. Safe at any time, also after completion.
    virtual void cancel() noexcept = 0;
  };

  /// `nameservers` ("IP" or "IP:PORT") replace those of /etc/resolv.conf when not empty.
  Resolver(event_base* base, Scheduler& scheduler, std::vector<std::string> nameservers = {});
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  std::unique_ptr<Lookup> resolve(const std::string& host, Done done);

 private:
  evdns_base* dns();

  struct DnsBaseDeleter {
    void operator()(evdns_base* dns) const noexcept;
  };

  event_base* base_;
  Scheduler& scheduler_;
  std::vector<std::string> nameservers_;
  std::unique_ptr<evdns_base, DnsBaseDeleter> dns_;  // made on first use
};

}  // namespace pgwd
