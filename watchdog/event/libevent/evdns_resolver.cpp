#include "event/libevent/evdns_resolver.hpp"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "event/libevent/event_ptr.hpp"

namespace pgwd {
namespace {

std::vector<std::string> numeric_addresses(const evutil_addrinfo* list) {
  std::vector<std::string> out;
  for (const evutil_addrinfo* ai = list; ai; ai = ai->ai_next) {
    std::array<char, 64> text{};
    const void* raw = nullptr;
    if (ai->ai_family == AF_INET)
      raw = &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr;
    else if (ai->ai_family == AF_INET6)
      raw = &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr;
    if (!raw || !evutil_inet_ntop(ai->ai_family, raw, text.data(), text.size())) continue;
    std::string address(text.data());
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(std::move(address));
  }
  return out;
}

// What the C callback and the Lookup handle share. evdns may run the callback synchronously
// inside evdns_getaddrinfo, and after a cancel it still runs it later with EVUTIL_EAI_CANCEL, so
// this state is kept alive by whichever of the two lets go last.
struct LookupState {
  Resolver::Done done;
  evdns_getaddrinfo_request* request = nullptr;
  bool finished = false;
  bool cancelled = false;
  bool answered_synchronously = false;
  Resolution result;
};

class EvdnsLookup final : public Lookup {
 public:
  EvdnsLookup(std::shared_ptr<LookupState> state, event_base* base)
      : state_(std::move(state)), deliver_(evtimer_new(base, &EvdnsLookup::deliver, this)) {
    if (!deliver_) throw std::bad_alloc();
  }
  ~EvdnsLookup() override { cancel(); }
  EvdnsLookup(const EvdnsLookup&) = delete;
  EvdnsLookup& operator=(const EvdnsLookup&) = delete;

  void cancel() noexcept override {
    state_->cancelled = true;
    evtimer_del(deliver_.get());
    if (!state_->finished && state_->request) evdns_getaddrinfo_cancel(state_->request);
  }

  void start(evdns_base* dns, const std::string& host) {
    evutil_addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    // The callback owns one reference; it takes it back when evdns calls it (always, exactly once).
    auto* ref = new std::shared_ptr<LookupState>(state_);
    state_->answered_synchronously = true;
    state_->request =
        evdns_getaddrinfo(dns, host.c_str(), nullptr, &hints, &EvdnsLookup::answered, ref);
    state_->answered_synchronously = false;
    // Answered before evdns_getaddrinfo returned (e.g. /etc/hosts): deliver from the loop instead,
    // so that callers never see their callback run inside resolve().
    if (state_->finished) {
      const timeval now{0, 0};
      evtimer_add(deliver_.get(), &now);
    }
  }

 private:
  static void answered(int error, evutil_addrinfo* list, void* arg) {
    const std::unique_ptr<std::shared_ptr<LookupState>> ref(
        static_cast<std::shared_ptr<LookupState>*>(arg));
    const std::shared_ptr<LookupState> state = *ref;
    state->finished = true;
    state->request = nullptr;
    if (error == 0) {
      state->result.addresses = numeric_addresses(list);
      if (state->result.addresses.empty()) state->result.error = "no usable address";
    } else {
      state->result.error = evutil_gai_strerror(error);
    }
    if (list) evutil_freeaddrinfo(list);
    if (state->cancelled || error == EVUTIL_EAI_CANCEL) return;
    if (!state->answered_synchronously) {
      auto done = state->done;  // the callback may destroy the Lookup that holds `state`
      done(std::move(state->result));
    }
  }

  static void deliver(evutil_socket_t, short, void* self) {
    const std::shared_ptr<LookupState> state = static_cast<EvdnsLookup*>(self)->state_;
    if (state->cancelled) return;
    auto done = state->done;  // the callback may destroy this Lookup
    done(std::move(state->result));
  }

  std::shared_ptr<LookupState> state_;
  EventPtr deliver_;
};

}  // namespace

void EvdnsResolver::DnsBaseDeleter::operator()(evdns_base* dns) const noexcept {
  evdns_base_free(dns, /*fail_requests=*/1);
}

EvdnsResolver::EvdnsResolver(event_base* base, const std::vector<std::string>& nameservers)
    : base_(base) {
  // DISABLE_WHEN_INACTIVE: an idle resolver must not keep the host's loop running.
  if (nameservers.empty())
    dns_.reset(evdns_base_new(
        base_, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE));
  if (!dns_) {
    // Our own nameservers, or no usable resolv.conf: /etc/hosts still works either way.
    dns_.reset(evdns_base_new(base_, EVDNS_BASE_DISABLE_WHEN_INACTIVE));
    if (!dns_) throw std::bad_alloc();
    evdns_base_load_hosts(dns_.get(), nullptr);
    for (const std::string& server : nameservers)
      if (evdns_base_nameserver_ip_add(dns_.get(), server.c_str()) != 0)
        throw std::invalid_argument("nameservers: '" + server +
                                    "' is not an address (IP, IP:PORT or [IPv6]:PORT)");
  }
}

EvdnsResolver::~EvdnsResolver() = default;

std::unique_ptr<Lookup> EvdnsResolver::resolve(const std::string& host, Done done) {
  auto state = std::make_shared<LookupState>();
  state->done = std::move(done);
  auto lookup = std::make_unique<EvdnsLookup>(state, base_);
  lookup->start(dns_.get(), host);
  return lookup;
}

}  // namespace pgwd
