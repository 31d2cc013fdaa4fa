#include "metrics/registry_share.hpp"

#include <map>

namespace pgwd {

RegistryShare::Claim::Claim(std::shared_ptr<RegistryShare> share, std::set<std::string>& names,
                            std::string name)
    : share_(std::move(share)), names_(names), name_(std::move(name)) {}

RegistryShare::Claim::~Claim() {
  const std::lock_guard lock(share_->mutex_);
  names_.erase(name_);
}

std::shared_ptr<RegistryShare> RegistryShare::of(
    const std::shared_ptr<prometheus::Registry>& registry) {
  // Keyed by address: while a share lives it holds its registry, so the address stays unique.
  static std::mutex mutex;
  static std::map<const prometheus::Registry*, std::weak_ptr<RegistryShare>> shares;
  const std::lock_guard lock(mutex);
  std::erase_if(shares, [](const auto& entry) { return entry.second.expired(); });
  auto& slot = shares[registry.get()];
  std::shared_ptr<RegistryShare> share = slot.lock();
  if (!share) {
    share = std::make_shared<RegistryShare>(registry);
    slot = share;
  }
  return share;
}

RegistryShare::RegistryShare(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)), families_(*registry_) {}

std::unique_ptr<RegistryShare::Claim> RegistryShare::claim(std::set<std::string>& names,
                                                           const std::string& name) {
  // Called with mutex_ held.
  if (!names.insert(name).second) return nullptr;
  return std::make_unique<Claim>(shared_from_this(), names, name);
}

std::unique_ptr<RegistryShare::Claim> RegistryShare::claim_target(const std::string& name) {
  const std::lock_guard lock(mutex_);
  return claim(targets_, name);
}

std::unique_ptr<RegistryShare::Claim> RegistryShare::claim_watchdog(const std::string& wanted) {
  const std::lock_guard lock(mutex_);
  if (!wanted.empty()) return claim(watchdogs_, wanted);
  for (int n = 1;; ++n) {
    const std::string name = n == 1 ? "watchdog" : "watchdog-" + std::to_string(n);
    if (!watchdogs_.contains(name)) return claim(watchdogs_, name);
  }
}

}  // namespace pgwd
