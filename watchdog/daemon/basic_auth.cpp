#include "daemon/basic_auth.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace pgwd::daemon {
namespace {

// A valid cost-10 hash that no user has: an unknown user is checked against it, so that the
// answer takes as long as for a known one.
constexpr std::string_view kDecoyHash =
    "$2y$10$RqZuM2/IhaYKqygZewTfD.b/AOOg8MjjW2VLJV7FbHGewIA2W7vte";

bool bcrypt_matches(std::string_view password, std::string_view hash) {
  // crypt_data is about 32 KiB: too large for a worker thread's stack to take lightly.
  auto scratch = std::make_unique<crypt_data>();
  const std::string password_text(password);
  const std::string hash_text(hash);
  const char* computed =
      crypt_rn(password_text.c_str(), hash_text.c_str(), scratch.get(), sizeof(crypt_data));
  if (!computed || std::strlen(computed) != hash_text.size()) return false;
  return CRYPTO_memcmp(computed, hash_text.data(), hash_text.size()) == 0;
}

}  // namespace

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

BasicAuth::Digest BasicAuth::digest(std::string_view user, std::string_view password,
                                    std::string_view hash) {
  std::string input;
  input.reserve(user.size() + password.size() + hash.size() + 2);
  input.append(user).append(1, '\0').append(password).append(1, '\0').append(hash);
  Digest out{};
  unsigned length = 0;
  if (EVP_Digest(input.data(), input.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != out.size())
    throw std::runtime_error("SHA-256 failed");
  OPENSSL_cleanse(input.data(), input.size());
  return out;
}

bool BasicAuth::verify(std::string_view user, std::string_view password) {
  const auto known = users_.find(std::string(user));
  if (known == users_.end()) {
    (void)bcrypt_matches(password, kDecoyHash);
    return false;
  }
  const Digest presented = digest(user, password, known->second);
  {
    const std::lock_guard lock(mutex_);
    const auto cached = verified_.find(user);
    if (cached != verified_.end() &&
        CRYPTO_memcmp(cached->second.data(), presented.data(), presented.size()) == 0)
      return true;
  }
  if (!bcrypt_matches(password, known->second)) return false;
  const std::lock_guard lock(mutex_);
  verified_[known->first] = presented;
  return true;
}

}  // namespace pgwd::daemon
