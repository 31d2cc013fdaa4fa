#include "metrics/registry_share.hpp"

#include <condition_variable>
#include <map>

namespace pgwd {

RegistryShare::Claim::Claim(std::shared_ptr<RegistryShare> share, std::set<std::string>& names,
                            std::string name)
    : share_(std::move(share)), names_(names), name_(std::move(name)) {}

RegistryShare::Claim::~Claim() {
  bool watchdog_left = false;
  {
    const std::lock_guard lock(share_->mutex_);
    names_.erase(name_);
    watchdog_left = &names_ == &share_->watchdogs_ && share_->watchdogs_.empty();
  }
  // Not under mutex_: share_mutex comes first (of(), close_if_sole()).
  if (watchdog_left) share_->drop_if_abandoned();
}

namespace {

// Every registry's share, by address: while a share lives it holds its registry, so the
// address stays unique. Guarded by share_mutex; share_dropped wakes of() waiting on a closed one.
std::mutex share_mutex;
std::condition_variable share_dropped;
std::map<const prometheus::Registry*, std::weak_ptr<RegistryShare>>& shares() {
  static std::map<const prometheus::Registry*, std::weak_ptr<RegistryShare>> all;
  return all;
}

}  // namespace

std::shared_ptr<RegistryShare> RegistryShare::of(
    const std::shared_ptr<prometheus::Registry>& registry) {
  std::unique_lock lock(share_mutex);
  for (;;) {
    std::erase_if(shares(), [](const auto& entry) { return entry.second.expired(); });
    auto& slot = shares()[registry.get()];
    std::shared_ptr<RegistryShare> share = slot.lock();
    if (!share) {
      share = std::make_shared<RegistryShare>(registry);
      slot = share;
    }
    if (!share->closed_) {
      const std::lock_guard own(share->mutex_);
      ++share->joining_;
      return share;
    }
    // Its Watchdog is dropping the families: a fresh share would get the same ones from the
    // registry. That takes no user code, so this wait ends.
    share_dropped.wait(lock, [&] { return !share->closed_; });
  }
}

bool RegistryShare::close_if_sole() {
  const std::lock_guard lock(share_mutex);
  const std::lock_guard own(mutex_);
  if (watchdogs_.size() != 1 || joining_ != 0) return false;
  closed_ = true;
  families_.begin_dropping();
  return true;
}

void RegistryShare::drop_families() {
  {
    const std::lock_guard lock(share_mutex);
    families_.unregister(*registry_);
    shares().erase(registry_.get());  // the next Watchdog on the registry makes a fresh share
    const std::lock_guard own(mutex_);
    closed_ = false;
    dropped_ = true;
  }
  share_dropped.notify_all();
}

void RegistryShare::drop_if_abandoned() {
  const std::lock_guard lock(share_mutex);
  const std::lock_guard own(mutex_);
  // A Watchdog joining (of() hands out shares holding share_mutex), one still here, or one
  // dropping them already (close_if_sole): not ours to drop.
  if (!watchdogs_.empty() || joining_ != 0 || closed_ || dropped_) return;
  dropped_ = true;
  families_.unregister(*registry_);
  const auto it = shares().find(registry_.get());
  if (it != shares().end() && it->second.lock().get() == this) shares().erase(it);
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
  if (joining_ > 0) --joining_;
  if (!wanted.empty()) return claim(watchdogs_, wanted);
  for (int n = 1;; ++n) {
    const std::string name = n == 1 ? "watchdog" : "watchdog-" + std::to_string(n);
    if (!watchdogs_.contains(name)) return claim(watchdogs_, name);
  }
}

}  // namespace pgwd
